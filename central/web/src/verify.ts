import type { Schemas } from "./api/client";

/** The canonical order-set encoding (central/market/clearing.py): "GTX-ORDERSET-V1\n" ‖ u64 count ‖ per order, by id
 * ascending, u64 order_id ‖ u64 user ‖ u8 side ‖ u64 qty ‖ u64 price, little-endian. */
export function encodeOrderSet(orders: Schemas["EpochOrder"][]): Uint8Array {
  const magic = new TextEncoder().encode("GTX-ORDERSET-V1\n");
  const sorted = [...orders].sort((a, b) => a.order_id - b.order_id);
  const buf = new Uint8Array(magic.length + 8 + 33 * sorted.length);
  const view = new DataView(buf.buffer);
  buf.set(magic, 0);
  let off = magic.length;
  view.setBigUint64(off, BigInt(sorted.length), true);
  off += 8;
  for (const o of sorted) {
    view.setBigUint64(off, BigInt(o.order_id), true);
    view.setBigUint64(off + 8, BigInt(o.account), true);
    view.setUint8(off + 16, o.side);
    view.setBigUint64(off + 17, BigInt(o.qty), true);
    view.setBigUint64(off + 25, BigInt(o.price), true);
    off += 33;
  }
  return buf;
}

export async function orderSetHash(orders: Schemas["EpochOrder"][]): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encodeOrderSet(orders)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
