/** The gateway status page's QR payload: ``gridtokenx:<device id>?pairing=<ABCD-EFGH>`` (edge/web.py qr_payload). */
export function parseGatewayQr(text: string): { deviceId: string; pairing: string } | null {
  const m = /^gridtokenx:([1-9A-HJ-NP-Za-km-z]{32,44})(?:\?pairing=([A-Za-z0-9-]+))?$/.exec(text.trim());
  return m ? { deviceId: m[1], pairing: m[2] ?? "" } : null;
}
