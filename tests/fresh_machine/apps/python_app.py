"""The Python app of reference/local-environment.md, which shows the region below: it loads the .env
file next to it as that page says and makes one OAuth call (the client's token) and one gRPC call.
tests/fresh_machine/test_env_file.py runs it, and once more without `override=True` to show the
line matters where the machine exports its own CA variables."""
# region load-env
import os

from dotenv import load_dotenv
from scalekit import ScalekitClient

load_dotenv(override=True)  # the file's CA variables must win over ones the machine exports
scalekit = ScalekitClient(
    os.environ["SCALEKIT_ENVIRONMENT_URL"], os.environ["SCALEKIT_CLIENT_ID"], os.environ["SCALEKIT_CLIENT_SECRET"]
)
# endregion load-env
response, _ = scalekit.organization.list_organizations(page_size=1)
print(f"organizations: {response.total_size}")
