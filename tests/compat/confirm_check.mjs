// What a dApp or wallet does through @solana/web3.js 1.x against the embedded ledger's JSON-RPC and PubSub
// websocket: sendAndConfirmTransaction and confirmTransaction (which wait on signatureSubscribe), onAccountChange,
// and a holder's own transfer of a certificate slice (spl-token createTransferCheckedInstruction, Token-2022), which the chain refuses: certificate accounts are frozen at rest.
// tests/compat/test_web3_confirm.py runs it. Usage: node confirm_check.mjs <rpc url> <questions.json>
import { readFileSync } from "node:fs";
import {
  Connection, Keypair, PublicKey, SystemProgram, Transaction, TransactionInstruction, TransactionMessage,
  VersionedTransaction, sendAndConfirmTransaction,
} from "@solana/web3.js";
import {
  TOKEN_2022_PROGRAM_ID, createAssociatedTokenAccountIdempotentInstruction, createTransferCheckedInstruction,
  getAccount, getAssociatedTokenAddressSync, getMint,
} from "@solana/spl-token";

const [url, questionsPath] = process.argv.slice(2);
const q = JSON.parse(readFileSync(questionsPath, "utf8"));
const wsEndpoint = q.wsEndpoint ?? undefined; // undefined: web3.js derives it (the HTTP port + 1)
const conn = new Connection(url, { commitment: "confirmed", wsEndpoint, disableRetryOnRateLimit: true });
const MEMO = new PublicKey("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
const payer = Keypair.fromSecretKey(Uint8Array.from(q.payerSecret));
const out = {};
const within = (ms, what, promise) => Promise.race([promise, new Promise((_, reject) => setTimeout(
  () => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);

// sendAndConfirmTransaction: a legacy transaction, confirmed through signatureSubscribe.
const memoTx = new Transaction().add(new TransactionInstruction({ programId: MEMO, keys: [],
                                                                  data: Buffer.from("confirm check") }));
out.confirmed = await within(60_000, "sendAndConfirmTransaction", sendAndConfirmTransaction(conn, memoTx, [payer]));

// onAccountChange: a transfer to a watched account is notified.
const watched = Keypair.generate().publicKey;
const changed = new Promise((resolve) => {
  const id = conn.onAccountChange(watched, (account) => { conn.removeAccountChangeListener(id); resolve(account); });
});
await new Promise((r) => setTimeout(r, 200)); // let the subscription reach the server before the transfer lands
const latest = await conn.getLatestBlockhash();
const message = new TransactionMessage({
  payerKey: payer.publicKey, recentBlockhash: latest.blockhash,
  instructions: [SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: watched, lamports: 5_000_000 })],
}).compileToV0Message();
const v0 = new VersionedTransaction(message);
v0.sign([payer]);
const sig = await conn.sendTransaction(v0);
const confirmation = await within(60_000, "confirmTransaction", conn.confirmTransaction({ signature: sig, ...latest }));
out.v0 = { signature: sig, err: confirmation.value.err };
out.watchedLamports = (await within(60_000, "onAccountChange", changed)).lamports;

// A holder's own transfer of a certificate slice, built and signed as a wallet does.
const holder = Keypair.fromSecretKey(Uint8Array.from(q.holderSecret));
const mint = new PublicKey(q.certMint);
const to = new PublicKey(q.to);
const src = getAssociatedTokenAddressSync(mint, holder.publicKey, false, TOKEN_2022_PROGRAM_ID);
const dst = getAssociatedTokenAddressSync(mint, to, false, TOKEN_2022_PROGRAM_ID);
const decimals = (await getMint(conn, mint, "confirmed", TOKEN_2022_PROGRAM_ID)).decimals;
const before = (await getAccount(conn, src, "confirmed", TOKEN_2022_PROGRAM_ID)).amount;
const certTx = new Transaction().add(
  createAssociatedTokenAccountIdempotentInstruction(holder.publicKey, dst, to, mint, TOKEN_2022_PROGRAM_ID),
  createTransferCheckedInstruction(src, mint, dst, holder.publicKey, BigInt(q.amount), decimals, [],
                                   TOKEN_2022_PROGRAM_ID),
);
try {
  out.certificate = { signature: await within(60_000, "certificate transfer",
                                              sendAndConfirmTransaction(conn, certTx, [holder])), error: null };
} catch (e) {
  out.certificate = { signature: null, error: String(e.message ?? e), logs: e.logs ?? null };
}
out.certificate.before = before.toString();
out.certificate.after = (await getAccount(conn, src, "confirmed", TOKEN_2022_PROGRAM_ID)).amount.toString();
out.certificate.received = (await conn.getTokenAccountBalance(dst).catch(() => ({ value: { amount: "0" } })))
  .value.amount;

process.stdout.write(JSON.stringify(out));
process.exit(0); // close the websocket
