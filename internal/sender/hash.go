package sender

import kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"

func hashBase64(b []byte) string { return kcrypto.SHA256Base64(b) }
