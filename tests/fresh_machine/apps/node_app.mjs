// The Node app that tests/fresh_machine/test_env_file.py starts with the command of
// reference/local-environment.md: the SDK's OAuth call (its token) and one gRPC call.
import { ScalekitClient } from "@scalekit-sdk/node";

const scalekit = new ScalekitClient(
  process.env.SCALEKIT_ENVIRONMENT_URL,
  process.env.SCALEKIT_CLIENT_ID,
  process.env.SCALEKIT_CLIENT_SECRET,
);
const { totalSize } = await scalekit.organization.listOrganization({ pageSize: 1 });
console.log(`organizations: ${totalSize}`);
