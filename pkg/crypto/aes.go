package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// EncryptedSize returns the ciphertext size of a plaintext of plainSize
// bytes: PKCS#7 always pads, to the next multiple of 16 strictly above
// plainSize. It panics if plainSize is negative.
func EncryptedSize(plainSize int64) int64 {
	if plainSize < 0 {
		panic("kcrypto: negative plaintext size")
	}
	return plainSize + blockSize - plainSize%blockSize
}

// Encrypt encrypts plain with AES-256-CBC and PKCS#7 padding. It does not
// modify plain.
func Encrypt(plain, key, iv []byte) ([]byte, error) {
	enc, err := newCBC(key, iv, cipher.NewCBCEncrypter)
	if err != nil {
		return nil, err
	}
	out := make([]byte, EncryptedSize(int64(len(plain))))
	n := copy(out, plain)
	pad(out, n)
	enc.CryptBlocks(out, out)
	return out, nil
}

// Decrypt reverses [Encrypt]. Errors wrap [ErrCiphertextLength] when the
// ciphertext is empty or not block-aligned and [ErrPadding] when the padding
// is malformed, which is also what a wrong key or IV usually produces.
func Decrypt(ciphertext, key, iv []byte) ([]byte, error) {
	dec, err := newCBC(key, iv, cipher.NewCBCDecrypter)
	if err != nil {
		return nil, err
	}
	if err := checkCiphertextLength(int64(len(ciphertext))); err != nil {
		return nil, err
	}
	out := make([]byte, len(ciphertext))
	dec.CryptBlocks(out, ciphertext)
	n, err := unpad(out)
	if err != nil {
		clear(out)
		return nil, err
	}
	return out[:n], nil
}

func newCBC(key, iv []byte, mode func(cipher.Block, []byte) cipher.BlockMode) (cipher.BlockMode, error) {
	if err := checkKeyIV(key, iv); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil { // unreachable after the length check
		return nil, fmt.Errorf("%w: %w", ErrKeyLength, err)
	}
	return mode(block, iv), nil
}

func checkCiphertextLength(n int64) error {
	if n == 0 || n%blockSize != 0 {
		return fmt.Errorf("%w: got %d bytes", ErrCiphertextLength, n)
	}
	return nil
}

// pad writes PKCS#7 padding after the first n bytes of b and returns the
// padded length. b must have room for it: len(b) >= n + 16 - n%16.
func pad(b []byte, n int) int {
	p := blockSize - n%blockSize
	for i := range p {
		b[n+i] = byte(p)
	}
	return n + p
}

// unpad returns the length of b without its PKCS#7 padding. b must be a
// positive multiple of 16 bytes. Only the last block is inspected, and
// without branching on its contents: the pad value must be 1..16 and every
// pad byte must equal it.
func unpad(b []byte) (int, error) {
	if len(b) == 0 || len(b)%blockSize != 0 {
		return 0, fmt.Errorf("%w: %d bytes is not a whole number of blocks", ErrPadding, len(b))
	}
	last := b[len(b)-blockSize:]
	p := int(last[blockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, blockSize)
	for i := range blockSize {
		// inPad is 1 for the last p bytes of the block.
		inPad := subtle.ConstantTimeLessOrEq(i+1, p)
		eq := subtle.ConstantTimeByteEq(last[blockSize-1-i], byte(p))
		good &= eq | (inPad ^ 1)
	}
	if good != 1 {
		return 0, ErrPadding
	}
	return len(b) - p, nil
}
