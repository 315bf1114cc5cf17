"""The standalone verifier: policy (pure) and web app."""
