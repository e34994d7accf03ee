"""ExecuTorch export (XNNPACK, int8), the bundle manifest and the runtime replay (issue 5)."""
