import type { Schemas } from "./api/client";

/** The canonical order-set encoding (central/market/clearing.py): "GTX-ORDERSET-V1\n" ‖ u64 count ‖ per order, by id
 * ascending, u64 order_id ‖ u64 user ‖ u8 side ‖ u64 qty ‖ u64 price, little-endian. */
export function encodeOrderSet(orders: Schemas["EpochOrder"][]): Uint8Array {
  return encodeOrders("GTX-ORDERSET-V1\n", new Uint8Array(0), orders, false);
}

/** The zonal order-set encoding (central/market/zonal.py): "GTX-ORDERSET-Z1\n" ‖ u32 length ‖ the zone parameters
 * (published as hex) ‖ u64 count ‖ per order, by id ascending, u64 order_id ‖ u64 user ‖ u8 side ‖ u64 qty ‖
 * u64 price ‖ u32 zone, little-endian. */
export function encodeZonalOrderSet(orders: Schemas["EpochOrder"][], zoneParamsHex: string): Uint8Array {
  const params = Uint8Array.from(zoneParamsHex.match(/../g) ?? [], (h) => parseInt(h, 16));
  const prefix = new Uint8Array(4 + params.length);
  new DataView(prefix.buffer).setUint32(0, params.length, true);
  prefix.set(params, 4);
  return encodeOrders("GTX-ORDERSET-Z1\n", prefix, orders, true);
}

/** magic ‖ prefix ‖ u64 count ‖ the orders by id ascending (33 bytes each, 37 with the u32 zone when `zoned`). */
function encodeOrders(magicText: string, prefix: Uint8Array, orders: Schemas["EpochOrder"][], zoned: boolean): Uint8Array {
  const magic = new TextEncoder().encode(magicText);
  const row = zoned ? 37 : 33;
  const sorted = [...orders].sort((a, b) => a.order_id - b.order_id);
  const buf = new Uint8Array(magic.length + prefix.length + 8 + row * sorted.length);
  const view = new DataView(buf.buffer);
  buf.set(magic, 0);
  buf.set(prefix, magic.length);
  let off = magic.length + prefix.length;
  view.setBigUint64(off, BigInt(sorted.length), true);
  off += 8;
  for (const o of sorted) {
    view.setBigUint64(off, BigInt(o.order_id), true);
    view.setBigUint64(off + 8, BigInt(o.account), true);
    view.setUint8(off + 16, o.side);
    view.setBigUint64(off + 17, BigInt(o.qty), true);
    view.setBigUint64(off + 25, BigInt(o.price), true);
    if (zoned) view.setUint32(off + 33, o.zone ?? 0, true);
    off += row;
  }
  return buf;
}

/** SHA-256 (hex) of the published order set: zonal when the epoch has zone parameters, else the single-zone form. */
export async function orderSetHash(orders: Schemas["EpochOrder"][], zoneParamsHex?: string | null): Promise<string> {
  const bytes = zoneParamsHex ? encodeZonalOrderSet(orders, zoneParamsHex) : encodeOrderSet(orders);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
