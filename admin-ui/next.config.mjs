/** Static export served by Beacon's REST server (or nginx) under /ui/. */
const nextConfig = {
  output: "export",
  basePath: "/ui",
  trailingSlash: true,
  reactStrictMode: true,
  images: { unoptimized: true },
};

export default nextConfig;
