// Builds the console into the Python package, where the API serves it at /console/ (api/console.py).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  // Every asset URL starts with /console/: the page may be opened on any deep link (the API answers
  // index.html there), and relative URLs would then point below that link.
  base: "/console/",
  build: {
    outDir: "../src/graphrun/console/static",
    emptyOutDir: true,
    // Inlined assets and a single CSS file keep the shipped folder small and stable.
    assetsInlineLimit: 4096,
    sourcemap: false,
    // The LangGraph SDK is most of the bundle; one file served locally is fine for a console.
    chunkSizeWarningLimit: 1024,
  },
});
