import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // Loaded by Node at run time, not bundled: the SQLite WebAssembly file and the SDK's gRPC client.
  serverExternalPackages: ["node-sqlite3-wasm", "@scalekit-sdk/node"],
  poweredByHeader: false,
};

export default nextConfig;
