"""Minting: final export windows become energy tokens in the owner's wallet, exactly once (DESIGN D3, D7)."""
