from services.common.migrations import run_migrations
from services.registry import models
from services.registry.config import get_settings

run_migrations(models.RegistryModel.metadata, get_settings().database_url)
