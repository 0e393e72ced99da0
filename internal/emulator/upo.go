package emulator

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"time"
	_ "time/tzdata" // UPO dates are in Polish time, wherever the emulator runs

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// UPONamespace is the namespace of the UPO v4-3 schema (official/faktury/upo/schemy/upo-v4-3.xsd).
const UPONamespace = "http://upo.schematy.mf.gov.pl/KSeF/v4-3"

// upoReceiver is the schema's fixed name of the receiving entity (the Ministry's test
// environment writes a longer name, which fails its own schema).
const upoReceiver = "Ministerstwo Finansów"

// upo is the session UPO, element order as the schema's sequence.
type upo struct {
	XMLName        xml.Name        `xml:"Potwierdzenie"`
	Xmlns          string          `xml:"xmlns,attr"`
	Receiver       string          `xml:"NazwaPodmiotuPrzyjmujacego"`
	SessionRef     string          `xml:"NumerReferencyjnySesji"`
	Authentication upoAuth         `xml:"Uwierzytelnienie"`
	Description    *upoDescription `xml:"OpisPotwierdzenia"`
	Structure      string          `xml:"NazwaStrukturyLogicznej"`
	FormCode       string          `xml:"KodFormularza"`
	Documents      []upoDocument   `xml:"Dokument"`
}

type upoAuth struct {
	ContextNIP string `xml:"IdKontekstu>Nip"`
	TokenRef   string `xml:"NumerReferencyjnyTokenaKSeF"`
}

type upoDescription struct {
	Page       int `xml:"Strona"`
	Pages      int `xml:"LiczbaStron"`
	From       int `xml:"ZakresDokumentowOd"`
	To         int `xml:"ZakresDokumentowDo"`
	TotalCount int `xml:"CalkowitaLiczbaDokumentow"`
}

type upoDocument struct {
	SellerNIP   string `xml:"NipSprzedawcy"`
	KsefNumber  string `xml:"NumerKSeFDokumentu"`
	Number      string `xml:"NumerFaktury"`
	IssueDate   string `xml:"DataWystawieniaFaktury"`
	Received    string `xml:"DataPrzeslaniaDokumentu"`
	Acquisition string `xml:"DataNadaniaNumeruKSeF"`
	Hash        string `xml:"SkrotDokumentu"`
	Mode        string `xml:"TrybWysylki"`
}

// upoTime is the dateTime form of the Ministry's samples: milliseconds and a zone offset.
const upoTime = "2006-01-02T15:04:05.000Z07:00"

var warsaw = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Warsaw"); err == nil {
		return l
	}
	return time.UTC
}()

// buildUPO writes the UPO of a session listing its accepted invoices (one page: a session
// holds at most 10,000 invoices, the schema's page size).
func buildUPO(s *session, docs []*invoice) ([]byte, *apiError) {
	u := upo{
		Xmlns:          UPONamespace,
		Receiver:       upoReceiver,
		SessionRef:     s.ID,
		Authentication: upoAuth{ContextNIP: s.Owner, TokenRef: s.TokenRef},
		Description:    &upoDescription{Page: 1, Pages: 1, From: 1, To: len(docs), TotalCount: len(docs)},
		Structure:      "Schemat_FA(3)_v1-0E.xsd",
		FormCode:       "FA (3)",
	}
	for _, inv := range docs {
		mode := "Online"
		if inv.Offline {
			mode = "Offline"
		}
		u.Documents = append(u.Documents, upoDocument{
			SellerNIP:   inv.SellerNIP,
			KsefNumber:  inv.KsefNumber,
			Number:      inv.Number,
			IssueDate:   inv.IssueDate,
			Received:    inv.Received.In(warsaw).Format(upoTime),
			Acquisition: inv.Acquisition.In(warsaw).Format(upoTime),
			Hash:        inv.Hash,
			Mode:        mode,
		})
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "\t")
	if err := enc.Encode(u); err != nil {
		return nil, errf(http.StatusInternalServerError, ksef.CodeSessionUPO, "Nie udało się wygenerować UPO")
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
