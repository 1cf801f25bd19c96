"""`verifier certify`: verified accuracy of a classifier over a data set within an L-inf, L2 or L1 ball.

Modules, one job each: `eps` (radius / sweep / shard parsing), `data` (loading x, y), `network` (the model
with normalisation inside the verified graph, eps-boxes), `attack` (batched PGD on margins), `stages`
(batched IBP / CROWN / alpha-CROWN, per-sample branch and bound), `cascade` (the per-sample cascade),
`records` (JSONL results, resume, shards), `summary` / `report` / `plot` (what comes out), `tightness`
(IBP propagation tightness and relu states), `command` (the click command) and `module` (`certify_module`:
a torch module certified in memory).

Nothing is imported here, so `verifier --help` stays free of torch.
"""
