package poller

import (
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// upoSample is the shape of a UPO v4-3 as KSeF (and the emulator) issues it, cut to what the
// poller reads: the KSeF numbers of the session's documents.
const upoSample = `<?xml version="1.0" encoding="UTF-8"?>
<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3">
  <NazwaPodmiotuPrzyjmujacego>Ministerstwo Finansów</NazwaPodmiotuPrzyjmujacego>
  <NumerReferencyjnySesji>20261125-SO-0000000001-551EA30350-D5</NumerReferencyjnySesji>
  <Uwierzytelnienie><IdKontekstu><Nip>5261040828</Nip></IdKontekstu></Uwierzytelnienie>
  <Dokument>
    <NipSprzedawcy>5261040828</NipSprzedawcy>
    <NumerKSeFDokumentu>%s</NumerKSeFDokumentu>
    <NumerFaktury>FV/5261/0001</NumerFaktury>
    <DataPrzeslaniaDokumentu>2026-11-25T10:00:00Z</DataPrzeslaniaDokumentu>
    <SkrotDokumentu>VApDwKeR6SyzINdtTrrFIb3HDeTcPiABnAz8vppzBWI=</SkrotDokumentu>
  </Dokument>
  <Dokument>
    <NumerKSeFDokumentu>%s</NumerKSeFDokumentu>
  </Dokument>
</Potwierdzenie>`

// FuzzUPONumbers feeds arbitrary bytes to the UPO reader: it must never panic, and a UPO it
// reads lists as many numbers as it has Dokument elements.
func FuzzUPONumbers(f *testing.F) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	a := ksef.NewNumber("5261040828", day, 1)
	b := ksef.NewNumber("5261040828", day, 2)
	full := strings.Replace(strings.Replace(upoSample, "%s", a, 1), "%s", b, 1)
	f.Add([]byte(full))
	f.Add([]byte(`<Potwierdzenie/>`))
	f.Add([]byte(`<Potwierdzenie><Dokument></Dokument></Potwierdzenie>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Potwierdzenie>&a;</Potwierdzenie>`))
	f.Add([]byte("<html><body>502 Bad Gateway</body></html>"))
	f.Add([]byte{})

	got, err := upoNumbers([]byte(full))
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		f.Fatalf("the sample UPO reads as %v (%v), want [%s %s]", got, err, a, b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nums, err := upoNumbers(data)
		if err != nil {
			return
		}
		// Every Dokument element, whatever its namespace prefix, spells its name in the input.
		if n := strings.Count(string(data), "Dokument"); len(nums) > n {
			t.Fatalf("%d numbers from a document naming Dokument %d times", len(nums), n)
		}
	})
}
