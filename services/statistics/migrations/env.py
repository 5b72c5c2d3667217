from services.common.migrations import run_migrations
from services.statistics import models
from services.statistics.config import get_settings

run_migrations(models.StatisticsModel.metadata, get_settings().database_url)
