"""Small models bundled with the package (onnxc demo)."""
