from gateway.models import GatewayModel
from tsunagu.migrations import run_env

run_env(GatewayModel.metadata)
