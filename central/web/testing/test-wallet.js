// A Wallet Standard wallet for the browser tests, registered through @wallet-standard/wallet's registerWallet: the
// app finds it exactly as it finds Phantom or Solflare, and @solana/wallet-adapter-react drives it through its real
// StandardWalletAdapter. It signs with the 64-byte secret key the test put in window.__GTX_TEST_WALLET_SECRET (hex).
// Bundled by the tests (esbuild, an IIFE) and added as an init script; never part of the app's build.
import { registerWallet } from "@wallet-standard/wallet";
import nacl from "tweetnacl";

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
function b58(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = "1" + out;
  }
  return out;
}
const hex = (h) => Uint8Array.from(h.match(/../g).map((x) => parseInt(x, 16)));

function compactU16(buf, off) {
  let value = 0;
  let size = 0;
  for (;;) {
    const b = buf[off + size];
    value |= (b & 0x7f) << (7 * size);
    size += 1;
    if ((b & 0x80) === 0) return [value, size];
  }
}

/** Sign a serialized (legacy or v0) transaction in place: our signature goes in our signer slot. */
function signTransaction(tx, keyPair) {
  const [sigCount, sigLen] = compactU16(tx, 0);
  const msgStart = sigLen + 64 * sigCount;
  const message = tx.subarray(msgStart);
  let p = 0;
  if (message[0] & 0x80) p = 1; // versioned message prefix
  const numRequired = message[p];
  p += 3;
  const [keyCount, keyLen] = compactU16(message, p);
  p += keyLen;
  const pub = keyPair.publicKey;
  for (let i = 0; i < Math.min(keyCount, numRequired); i++) {
    const key = message.subarray(p + 32 * i, p + 32 * i + 32);
    if (key.every((b, j) => b === pub[j])) {
      const out = Uint8Array.from(tx);
      out.set(nacl.sign.detached(message, keyPair.secretKey), sigLen + 64 * i);
      return out;
    }
  }
  throw new Error("this transaction does not ask the test wallet to sign");
}

const keyPair = nacl.sign.keyPair.fromSecretKey(hex(window.__GTX_TEST_WALLET_SECRET));
const CHAINS = ["solana:mainnet", "solana:devnet", "solana:testnet", "solana:localnet"];
const account = {
  address: b58(keyPair.publicKey),
  publicKey: keyPair.publicKey,
  chains: CHAINS,
  features: ["solana:signMessage", "solana:signTransaction"],
};
window.__gtxTestWallet = { signed: 0, address: account.address };
const listeners = {};
let connected = [];

const wallet = {
  version: "1.0.0",
  name: "GTX Test Wallet",
  icon: "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxIDEiLz4=",
  chains: CHAINS,
  get accounts() {
    return connected;
  },
  features: {
    "standard:connect": {
      version: "1.0.0",
      connect: async () => {
        connected = [account];
        (listeners.change || []).forEach((l) => l({ accounts: connected }));
        return { accounts: connected };
      },
    },
    "standard:disconnect": {
      version: "1.0.0",
      disconnect: async () => {
        connected = [];
        (listeners.change || []).forEach((l) => l({ accounts: connected }));
      },
    },
    "standard:events": {
      version: "1.0.0",
      on: (event, listener) => {
        (listeners[event] ||= []).push(listener);
        return () => (listeners[event] = listeners[event].filter((l) => l !== listener));
      },
    },
    "solana:signMessage": {
      version: "1.0.0",
      signMessage: async (...inputs) =>
        inputs.map(({ message }) => {
          window.__gtxTestWallet.signed += 1;
          return { signedMessage: message, signature: nacl.sign.detached(message, keyPair.secretKey) };
        }),
    },
    "solana:signTransaction": {
      version: "1.0.0",
      supportedTransactionVersions: ["legacy", 0],
      signTransaction: async (...inputs) =>
        inputs.map(({ transaction }) => {
          window.__gtxTestWallet.signed += 1;
          return { signedTransaction: signTransaction(transaction, keyPair) };
        }),
    },
  },
};

registerWallet(wallet);
