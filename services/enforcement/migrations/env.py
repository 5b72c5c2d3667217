from services.common.migrations import run_migrations
from services.enforcement import models
from services.enforcement.config import get_settings

run_migrations(models.EnforcementModel.metadata, get_settings().database_url)
