"""Anchoring on Ethereum: Merkle batches, the AnchorRegistry contract, chain backends."""
