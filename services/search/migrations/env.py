from services.search.models import SearchModel
from tsunagu.migrations import run_env

run_env(SearchModel.metadata)
