import type { NextConfig } from 'next';

const nextConfig: NextConfig = {
    poweredByHeader: false,
    turbopack: { root: __dirname } // this folder is the app, even inside another project
};

export default nextConfig;
