package crypto_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log"
	"strings"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
)

// A client opens a session with a fresh key, encrypts an invoice and
// reports the hashes and sizes KSeF asks for; the service unwraps the key and
// decrypts.
func Example() {
	// The service's key pair; the client sees only the base64 SPKI.
	servicePriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	published, err := kcrypto.EncodePublicKey(&servicePriv.PublicKey)
	if err != nil {
		log.Fatal(err)
	}

	// Client: a session key, wrapped for EncryptionInfo.
	pub, err := kcrypto.ParsePublicKey(published)
	if err != nil {
		log.Fatal(err)
	}
	sk, err := kcrypto.NewSessionKey()
	if err != nil {
		log.Fatal(err)
	}
	defer sk.Zero()
	encryptedKey, err := kcrypto.WrapKey(pub, sk.Key)
	if err != nil {
		log.Fatal(err)
	}

	// Client: encrypt the invoice while hashing plaintext and ciphertext.
	invoice := strings.NewReader("<Faktura>...</Faktura>")
	plain, invoiceDigest := kcrypto.DigestReader(invoice)
	var body bytes.Buffer
	encDigest := kcrypto.NewDigest()
	w, err := kcrypto.EncryptWriter(io.MultiWriter(&body, encDigest), sk.Key, sk.IV)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(w, plain); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("invoiceSize:", invoiceDigest.Size(), "encryptedInvoiceSize:", encDigest.Size())
	fmt.Println("session key prints as", sk)

	// Service: unwrap the key and decrypt.
	key, err := kcrypto.UnwrapKey(servicePriv, encryptedKey)
	if err != nil {
		log.Fatal(err)
	}
	got, err := kcrypto.Decrypt(body.Bytes(), key, sk.IV)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(got))
	fmt.Println("hash matches:", kcrypto.SHA256Base64(got) == invoiceDigest.Sum())
	// Output:
	// invoiceSize: 22 encryptedInvoiceSize: 32
	// session key prints as SessionKey(redacted)
	// <Faktura>...</Faktura>
	// hash matches: true
}
