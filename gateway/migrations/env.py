from gateway import models
from gateway.config import get_settings
from services.common.migrations import run_migrations

run_migrations(models.GatewayModel.metadata, get_settings().database_url)
