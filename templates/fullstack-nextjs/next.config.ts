import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  poweredByHeader: false,
  turbopack: { root: import.meta.dirname }, // this folder, even when a parent folder has its own lockfile
};

export default nextConfig;
