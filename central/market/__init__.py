"""The market: escrow, orders and epochs, uniform-price clearing, on-chain settlement (DESIGN D3, D8)."""
