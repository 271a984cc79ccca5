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

/** The zonal order-set encoding (central/market/zonal.py): "GTX-ORDERSET-Z1\n" ‖ u32 length ‖ the zone parameters
 * (published as hex) ‖ u64 count ‖ per order, by id ascending, u64 order_id ‖ u64 user ‖ u8 side ‖ u64 qty ‖
 * u64 price ‖ u32 zone, little-endian. */
export function encodeZonalOrderSet(orders: Schemas["EpochOrder"][], zoneParamsHex: string): Uint8Array {
  const magic = new TextEncoder().encode("GTX-ORDERSET-Z1\n");
  const params = Uint8Array.from(zoneParamsHex.match(/../g) ?? [], (h) => parseInt(h, 16));
  const sorted = [...orders].sort((a, b) => a.order_id - b.order_id);
  const buf = new Uint8Array(magic.length + 4 + params.length + 8 + 37 * sorted.length);
  const view = new DataView(buf.buffer);
  buf.set(magic, 0);
  let off = magic.length;
  view.setUint32(off, params.length, true);
  buf.set(params, off + 4);
  off += 4 + params.length;
  view.setBigUint64(off, BigInt(sorted.length), true);
  off += 8;
  for (const o of sorted) {
    view.setBigUint64(off, BigInt(o.order_id), true);
    view.setBigUint64(off + 8, BigInt(o.account), true);
    view.setUint8(off + 16, o.side);
    view.setBigUint64(off + 17, BigInt(o.qty), true);
    view.setBigUint64(off + 25, BigInt(o.price), true);
    view.setUint32(off + 33, o.zone ?? 0, true);
    off += 37;
  }
  return buf;
}

/** SHA-256 (hex) of the published order set: zonal when the epoch has zone parameters, else the single-zone form. */
export async function orderSetHash(orders: Schemas["EpochOrder"][], zoneParamsHex?: string | null): Promise<string> {
  const bytes = zoneParamsHex ? encodeZonalOrderSet(orders, zoneParamsHex) : encodeOrderSet(orders);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
