from services.matching.models import MatchingModel
from tsunagu.migrations import run_env

run_env(MatchingModel.metadata)
