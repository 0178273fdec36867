"""The scorer: ranks the whole expert projection for a request with numpy (no per-expert loop)."""
