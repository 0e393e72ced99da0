package ksef_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

var (
	p15 = regexp.MustCompile(`<P_15>[^<]*</P_15>`)
	p1  = regexp.MustCompile(`<P_1>[^<]*</P_1>`)
)

// TestInvoiceStatusPaths sends invoices that end in each outcome KSeF decides for an invoice and
// polls ksefInvoiceStatus until the status is final.
func TestInvoiceStatusPaths(t *testing.T) {
	h := startEmulator(t, nil)
	ctx := context.Background()
	a := h.client(t, tokA)
	s, err := a.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Forget)
	// A second session, for a duplicate sent apart from its original.
	s2, err := a.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Forget)

	// Totals that do not add up: P_15 is no longer the sum of the net amounts and VAT. KSeF
	// does not check that.
	badTotal := p15.ReplaceAll(invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/TOTAL"), []byte("<P_15>1.00</P_15>"))
	if bytes.Equal(badTotal, invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/TOTAL")) {
		t.Fatal("the generated invoice has no P_15 to spoil")
	}
	// An issue date after the day of acceptance, which KSeF refuses.
	future := p1.ReplaceAll(invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/450"), []byte("<P_1>"+time.Now().AddDate(0, 0, 3).Format("2006-01-02")+"</P_1>"))

	var original ksefapi.InvoiceInfo // the first of the invoice sent twice
	for _, tc := range []struct {
		name string
		xml  []byte
		// send, when set, sends in its own way and returns the invoice id; else s.Send.
		send   func(t *testing.T, xml []byte) string
		status ksef.StatusCode
		check  func(t *testing.T, st ksefapi.InvoiceInfo)
	}{
		{
			name: "accepted", xml: invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/200"), status: ksef.StatusAccepted,
			check: func(t *testing.T, st ksefapi.InvoiceInfo) {
				num := deref(st.KsefNumber)
				if err := ksef.ValidateNumber(num); err != nil || ksef.NumberNIP(num) != nipA {
					t.Errorf("KSeF number %q: %v", num, err)
				}
				if st.AcquisitionDate == nil || st.AcquisitionDate.IsZero() {
					t.Error("no acquisition date")
				}
				if st.InvoiceStatus != ksefapi.Accepted || deref(st.InvoiceNumber) != "FV/E2E/STATUS/200" {
					t.Errorf("invoice %q %s", deref(st.InvoiceNumber), st.InvoiceStatus)
				}
				// Permanent storage follows asynchronously.
				stored := awaitStored(t, h, a, deref(st.InvoiceId))
				if stored.PermanentStorageDate.Before(*stored.AcquisitionDate) || deref(stored.KsefNumber) != num {
					t.Errorf("stored %v, acquired %v, number %q", stored.PermanentStorageDate, stored.AcquisitionDate, deref(stored.KsefNumber))
				}
			},
		},
		{
			name: "schema violation", xml: sample(t, "invalid", "missing-invoice-number-p2.xml"), status: ksef.StatusInvalid,
			check: wantDetails("P_2"),
		},
		{
			name: "hash differs from the declared one", xml: invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/430"), status: ksef.StatusInvalid,
			send: func(t *testing.T, xml []byte) string {
				req, err := s.SendRequest(xml)
				if err != nil {
					t.Fatal(err)
				}
				req.Encrypted.InvoiceHash = kcrypto.SHA256Base64([]byte("another invoice"))
				return sendReq(t, a, req)
			},
			check: wantDetails("SHA-256"),
		},
		{
			name: "encrypted with another key", xml: invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/435"), status: ksef.StatusDecryption,
			send: func(t *testing.T, xml []byte) string {
				// A session whose key the test knows, so that the other key is sure not to
				// decrypt with valid padding by chance.
				id, key := openWithKey(t, a)
				req := ksefapi.KsefInvoiceSendRequest{SessionId: id, Encrypted: ksefapi.KsefInvoiceEncrypted{
					EncryptedInvoice: encryptWithOtherKey(t, xml, key), InvoiceHash: kcrypto.SHA256Base64(xml), InvoiceSize: int64(len(xml)),
				}}
				return sendReq(t, a, req)
			},
			check: wantDetails(""),
		},
		{
			name: "sent twice", xml: invoiceXML(t, nipA, nipB, "FV/E2E/STATUS/440"), status: ksef.StatusDuplicate,
			send: func(t *testing.T, xml []byte) string {
				r, err := s.Send(ctx, xml)
				if err != nil {
					t.Fatal(err)
				}
				first := awaitFinal(t, h, a, r.Id)
				if first.Status.Code != int32(ksef.StatusAccepted) {
					t.Fatalf("the original: %d %s", first.Status.Code, deref(first.Status.Details))
				}
				dup, err := s2.Send(ctx, xml)
				if err != nil {
					t.Fatal(err)
				}
				original = first
				return dup.Id
			},
			check: func(t *testing.T, st ksefapi.InvoiceInfo) {
				first := original
				ext := map[string]string{}
				for _, e := range deref(st.Status.Extensions) {
					ext[e.Key] = e.Value
				}
				if got := ext[ksef.ExtOriginalKsefNumber]; got == "" || got != deref(first.KsefNumber) {
					t.Errorf("originalKsefNumber %q, the original got %q", got, deref(first.KsefNumber))
				}
				if got := ext[ksef.ExtOriginalSessionReferenceNumber]; got != s.ID {
					t.Errorf("originalSessionReferenceNumber %q, the original was sent in %q", got, s.ID)
				}
				if st.KsefNumber != nil {
					t.Errorf("the duplicate got a number of its own: %s", *st.KsefNumber)
				}
			},
		},
		{
			name: "totals do not add up: KSeF does not check", xml: badTotal, status: ksef.StatusAccepted,
			check: func(*testing.T, ksefapi.InvoiceInfo) {},
		},
		{
			name: "issue date after the day of acceptance", xml: future, status: ksef.StatusSemantic,
			check: wantDetails("P_1"),
		},
		{
			name: "seller is not the context", xml: invoiceXML(t, nipC, nipB, "FV/E2E/STATUS/410"), status: ksef.StatusPermission,
			check: wantDetails(nipC),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var id string
			if tc.send != nil {
				id = tc.send(t, tc.xml)
			} else {
				r, err := s.Send(ctx, tc.xml)
				if err != nil {
					t.Fatal(err)
				}
				id = r.Id
			}
			// Until the outcome shows, the status is 100 or 150.
			var seen []int32
			st := *await(t, h, "invoice "+id,
				func() (*ksefapi.InvoiceInfo, error) { return a.InvoiceStatus(ctx, id) },
				func(i *ksefapi.InvoiceInfo) bool {
					seen = append(seen, i.Status.Code)
					return ksef.StatusCode(i.Status.Code).Final()
				})
			for _, c := range seen[:len(seen)-1] {
				if c != int32(ksef.StatusReceived) && c != int32(ksef.StatusProcessing) || ksef.StatusCode(c).Final() {
					t.Errorf("intermediate status %d", c)
				}
			}
			got := ksef.StatusCode(st.Status.Code)
			if got != tc.status {
				t.Fatalf("status %d (%s), want %d", got, deref(st.Status.Details), tc.status)
			}
			if st.Status.Description != got.Description() {
				t.Errorf("description %q, want %q", st.Status.Description, got.Description())
			}
			if got.Accepted() != (st.InvoiceStatus == ksefapi.Accepted) || !got.Accepted() && st.InvoiceStatus != ksefapi.Rejected {
				t.Errorf("status %d reads as %s", got, st.InvoiceStatus)
			}
			if got.Retryable() {
				t.Errorf("status %d is about the invoice, yet Retryable", got)
			}
			if deref(st.InvoiceId) != id {
				t.Errorf("status of %q, asked for %q", deref(st.InvoiceId), id)
			}
			tc.check(t, st)
		})
	}
}

// wantDetails checks that a rejection explains itself, mentioning want.
func wantDetails(want string) func(t *testing.T, st ksefapi.InvoiceInfo) {
	return func(t *testing.T, st ksefapi.InvoiceInfo) {
		t.Helper()
		d := deref(st.Status.Details)
		if d == "" || !strings.Contains(d, want) {
			t.Errorf("details %q, want them to mention %q", d, want)
		}
		if st.KsefNumber != nil || st.AcquisitionDate != nil {
			t.Errorf("a rejected invoice has KSeF number %q", deref(st.KsefNumber))
		}
	}
}

func sendReq(t *testing.T, c *ksef.Client, req ksefapi.KsefInvoiceSendRequest) string {
	t.Helper()
	r, err := c.SendInvoice(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return r.Id
}

// openWithKey opens an interactive session through the typed client with a key the test keeps.
func openWithKey(t *testing.T, c *ksef.Client) (string, *kcrypto.SessionKey) {
	t.Helper()
	enc, key, err := c.NewEncryption(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.OpenOnlineSession(context.Background(), ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: enc})
	if err != nil {
		t.Fatal(err)
	}
	return r.Id, key
}

// encryptWithOtherKey encrypts xml with a fresh key such that the session's key cannot
// decrypt it (a wrong key yields valid PKCS#7 padding about once in 256 tries).
func encryptWithOtherKey(t *testing.T, xml []byte, session *kcrypto.SessionKey) []byte {
	t.Helper()
	for range 100 {
		other, err := kcrypto.NewSessionKey()
		if err != nil {
			t.Fatal(err)
		}
		ct, err := kcrypto.Encrypt(xml, other.Key, session.IV)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kcrypto.Decrypt(ct, session.Key, session.IV); err != nil {
			return ct
		}
	}
	t.Fatal("every other key decrypted")
	return nil
}
