"""model layer of verifier: ONNX file -> checked, simplified `Graph`.

- `loader.load_model(path, check=True, cache=True) -> Model`: the entry point.
- `onnx_file`: parsing, interface and the unsupported-op scan; `translate`: onnx2torch fx -> Graph;
  `simplify`: Graph -> Graph rewrites; `check`: comparison with onnxruntime; `cache` + `serialize`:
  the on-disk graph cache.

Nothing is imported here, so `import verifier.model` stays cheap.
"""
