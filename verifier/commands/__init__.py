"""Click commands kept out of verifier/cli.py (each registered there with `main.add_command`).

Like cli.py, these modules import only click at module level: torch, numpy and the api are imported
inside the command bodies, so `verifier --help` stays fast.
"""
