from services.profiles.models import ProfilesModel
from tsunagu.migrations import run_env

run_env(ProfilesModel.metadata)
