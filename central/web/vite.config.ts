import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Built into dist/, which central serves at / (index), /app/* (pages) and /assets/* (hashed files).
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inline scripts or styles anywhere: the served Content-Security-Policy forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } } },
});
