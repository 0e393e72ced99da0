// Package crypto implements the client-side encryption scheme of the KSeF
// REST API 2.0. Importers alias it kcrypto to keep the standard library's
// crypto package name free.
//
// The scheme:
//
//   - For every session the client draws a random AES-256 key (32 bytes) and
//     a random 16-byte initialisation vector ([NewSessionKey]).
//   - Invoices, batch parts and query result parts are encrypted with
//     AES-256-CBC and PKCS#7 padding (AES/CBC/PKCS5Padding in Java terms)
//     under that key and IV ([Encrypt], [EncryptWriter], [EncryptReader]).
//     The padding always adds 1 to 16 bytes, so ciphertext is a positive
//     multiple of 16 bytes ([EncryptedSize]).
//   - The AES key is wrapped with RSA-OAEP (SHA-256 as both the OAEP hash and
//     the MGF1 hash, empty label) under the KSeF public key ([WrapKey]). The
//     service publishes that key as base64 DER SubjectPublicKeyInfo
//     ([ParsePublicKey]). The wrapped key and the base64 IV travel in the
//     session's EncryptionInfo.
//   - Document and part hashes are SHA-256 digests encoded in standard
//     base64 ([SHA256Base64], [Digest]).
//
// The streaming functions use a fixed amount of memory whatever the payload
// size, so multi-gigabyte batch packages can be encrypted on the way to an
// HTTP upload and decrypted on the way to storage.
//
// Session keys live only in memory: callers zero them with
// [SessionKey.Zero] once the session is over, and a SessionKey formats as
// "SessionKey(redacted)" so that it cannot leak through logs. Errors never
// contain key material.
//
// CBC without a MAC is malleable and, given a decryption oracle, open to
// padding-oracle attacks. That is the protocol as KSeF defines it; the
// package checks padding without data-dependent branches, but callers should
// still not echo decryption failures of attacker-supplied ciphertext back in
// detail.
package crypto
