// A matching claim travels in a shareable URL's fragment (/app/claim#<base64url JSON>): the fragment never reaches
// a server log, and the public verification page reads it back.
export interface SignedClaim {
  claim: Record<string, unknown>;
  signature: string;
  public_key?: string;
}

export function claimToFragment(c: SignedClaim): string {
  const bytes = new TextEncoder().encode(JSON.stringify({ claim: c.claim, signature: c.signature }));
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join("")).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function claimFromText(text: string): SignedClaim | null {
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== "object") return null;
    const o = v as Record<string, unknown>;
    if (!o.claim || typeof o.claim !== "object" || typeof o.signature !== "string") return null;
    return { claim: o.claim as Record<string, unknown>, signature: o.signature };
  } catch {
    return null;
  }
}

export function claimFromFragment(hash: string): SignedClaim | null {
  const b64 = hash.replace(/^#/, "").replace(/-/g, "+").replace(/_/g, "/");
  if (!b64) return null;
  try {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    return claimFromText(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}
