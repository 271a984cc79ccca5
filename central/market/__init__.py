"""The market: escrow, orders and epochs, uniform-price clearing, on-chain settlement
(docs/decisions/0003-integer-units.md, docs/decisions/0008-escrow-uniform-price-auction.md)."""
