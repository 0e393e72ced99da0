package fa3

import "encoding/xml"

// Namespace is the target namespace of the FA(3) schema (schemat_FA(3)_v1-0E.xsd).
const Namespace = "http://crd.gov.pl/wzor/2025/06/25/13775/"

// FA2Namespace is the namespace of the superseded FA(2) schema; documents in
// it are recognised only to be refused with KindNotFA3.
const FA2Namespace = "http://crd.gov.pl/wzor/2023/06/29/12648/"

// Fixed header values of an FA(3) document.
const (
	KodSystemowy      = "FA (3)"
	WersjaSchemy      = "1-0E"
	KodFormularzaFA   = "FA"
	WariantFormularza = "3"
)

// Invoice types (Fa/RodzajFaktury).
const (
	TypeVAT    = "VAT"     // basic invoice
	TypeKOR    = "KOR"     // correcting invoice
	TypeZAL    = "ZAL"     // advance invoice
	TypeROZ    = "ROZ"     // settlement invoice (after advances)
	TypeUPR    = "UPR"     // simplified invoice
	TypeKORZAL = "KOR_ZAL" // correction of an advance invoice
	TypeKORROZ = "KOR_ROZ" // correction of a settlement invoice
)

// Invoice is the FA(3) document (root element Faktura). The Go field names
// are the schema's element names so that the XSD documentation applies
// directly. Field order is the schema's sequence order, which Generate relies
// on when marshalling. Decimal amounts and dates are kept as the exact text
// of the document; choice groups are flattened into sibling fields of which
// at most one branch is set.
type Invoice struct {
	XMLName            xml.Name            `xml:"http://crd.gov.pl/wzor/2025/06/25/13775/ Faktura"`
	Naglowek           Naglowek            `xml:"Naglowek"`
	Podmiot1           Podmiot1            `xml:"Podmiot1"`
	Podmiot2           Podmiot2            `xml:"Podmiot2"`
	Podmiot3           []Podmiot3          `xml:"Podmiot3,omitempty"`
	PodmiotUpowazniony *PodmiotUpowazniony `xml:"PodmiotUpowazniony,omitempty"`
	Fa                 Fa                  `xml:"Fa"`
	Stopka             *Stopka             `xml:"Stopka,omitempty"`
	Zalacznik          *Zalacznik          `xml:"Zalacznik,omitempty"`
}

// Naglowek is the document header.
type Naglowek struct {
	KodFormularza     KodFormularza `xml:"KodFormularza"`
	WariantFormularza string        `xml:"WariantFormularza"`
	DataWytworzeniaFa string        `xml:"DataWytworzeniaFa"` // xsd:dateTime
	SystemInfo        string        `xml:"SystemInfo,omitempty"`
}

// KodFormularza is the form code "FA" with its fixed attributes.
type KodFormularza struct {
	KodSystemowy string `xml:"kodSystemowy,attr"`
	WersjaSchemy string `xml:"wersjaSchemy,attr"`
	Value        string `xml:",chardata"`
}

// Adres is a free-form address (TAdres).
type Adres struct {
	KodKraju string `xml:"KodKraju"`
	AdresL1  string `xml:"AdresL1"`
	AdresL2  string `xml:"AdresL2,omitempty"`
	GLN      string `xml:"GLN,omitempty"`
}

// DaneKontaktowe is one set of contact details (up to 3 per party).
type DaneKontaktowe struct {
	Email   string `xml:"Email,omitempty"`
	Telefon string `xml:"Telefon,omitempty"`
}

// DaneIdentyfikacyjne identifies a party. It covers TPodmiot1 (seller: NIP
// and Nazwa), TPodmiot2 (buyer: exactly one of NIP, KodUE+NrVatUE,
// [KodKraju]+NrID or BrakID, then optional Nazwa) and TPodmiot3 (third
// party: additionally IDWew).
type DaneIdentyfikacyjne struct {
	NIP      string `xml:"NIP,omitempty"`
	IDWew    string `xml:"IDWew,omitempty"`
	KodUE    string `xml:"KodUE,omitempty"`
	NrVatUE  string `xml:"NrVatUE,omitempty"`
	KodKraju string `xml:"KodKraju,omitempty"`
	NrID     string `xml:"NrID,omitempty"`
	BrakID   string `xml:"BrakID,omitempty"`
	Nazwa    string `xml:"Nazwa,omitempty"`
}

// Podmiot1 is the seller (the taxpayer issuing the invoice).
type Podmiot1 struct {
	PrefiksPodatnika    string              `xml:"PrefiksPodatnika,omitempty"`
	NrEORI              string              `xml:"NrEORI,omitempty"`
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	Adres               Adres               `xml:"Adres"`
	AdresKoresp         *Adres              `xml:"AdresKoresp,omitempty"`
	DaneKontaktowe      []DaneKontaktowe    `xml:"DaneKontaktowe,omitempty"`
	StatusInfoPodatnika string              `xml:"StatusInfoPodatnika,omitempty"`
}

// Podmiot2 is the buyer.
type Podmiot2 struct {
	NrEORI              string              `xml:"NrEORI,omitempty"`
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	Adres               *Adres              `xml:"Adres,omitempty"`
	AdresKoresp         *Adres              `xml:"AdresKoresp,omitempty"`
	DaneKontaktowe      []DaneKontaktowe    `xml:"DaneKontaktowe,omitempty"`
	NrKlienta           string              `xml:"NrKlienta,omitempty"`
	IDNabywcy           string              `xml:"IDNabywcy,omitempty"`
	JST                 string              `xml:"JST"` // 1 = subordinate unit of a local government, 2 = no
	GV                  string              `xml:"GV"`  // 1 = member of a VAT group, 2 = no
}

// Podmiot3 is a third party (0..100): another buyer, payer, recipient, ...
type Podmiot3 struct {
	IDNabywcy           string              `xml:"IDNabywcy,omitempty"`
	NrEORI              string              `xml:"NrEORI,omitempty"`
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	Adres               *Adres              `xml:"Adres,omitempty"`
	AdresKoresp         *Adres              `xml:"AdresKoresp,omitempty"`
	DaneKontaktowe      []DaneKontaktowe    `xml:"DaneKontaktowe,omitempty"`
	Rola                string              `xml:"Rola,omitempty"` // 1..11, or RolaInna+OpisRoli
	RolaInna            string              `xml:"RolaInna,omitempty"`
	OpisRoli            string              `xml:"OpisRoli,omitempty"`
	Udzial              string              `xml:"Udzial,omitempty"`
	NrKlienta           string              `xml:"NrKlienta,omitempty"`
}

// DaneKontaktowePU is a contact of the authorised entity.
type DaneKontaktowePU struct {
	EmailPU   string `xml:"EmailPU,omitempty"`
	TelefonPU string `xml:"TelefonPU,omitempty"`
}

// PodmiotUpowazniony is an authorised entity (bailiff, enforcement authority, fiscal representative).
type PodmiotUpowazniony struct {
	NrEORI              string              `xml:"NrEORI,omitempty"`
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	Adres               Adres               `xml:"Adres"`
	AdresKoresp         *Adres              `xml:"AdresKoresp,omitempty"`
	DaneKontaktowe      []DaneKontaktowePU  `xml:"DaneKontaktowe,omitempty"`
	RolaPU              string              `xml:"RolaPU"`
}

// OkresFa is the period an invoice covers (instead of P_6).
type OkresFa struct {
	P_6_Od string `xml:"P_6_Od"`
	P_6_Do string `xml:"P_6_Do"`
}

// Fa holds the invoice proper: dates, number, totals per VAT rate, annotations, lines, payment.
type Fa struct {
	KodWaluty string   `xml:"KodWaluty"`
	P_1       string   `xml:"P_1"`            // issue date
	P_1M      string   `xml:"P_1M,omitempty"` // place of issue
	P_2       string   `xml:"P_2"`            // invoice number
	WZ        []string `xml:"WZ,omitempty"`
	P_6       string   `xml:"P_6,omitempty"` // date of supply, when one date for the whole invoice
	OkresFa   *OkresFa `xml:"OkresFa,omitempty"`

	// Totals per rate: P_13_x net, P_14_x VAT, P_14_xW VAT converted to PLN for foreign-currency invoices.
	P_13_1   string `xml:"P_13_1,omitempty"` // basic rate 23% / 22%
	P_14_1   string `xml:"P_14_1,omitempty"`
	P_14_1W  string `xml:"P_14_1W,omitempty"`
	P_13_2   string `xml:"P_13_2,omitempty"` // first reduced rate 8% / 7%
	P_14_2   string `xml:"P_14_2,omitempty"`
	P_14_2W  string `xml:"P_14_2W,omitempty"`
	P_13_3   string `xml:"P_13_3,omitempty"` // second reduced rate 5%
	P_14_3   string `xml:"P_14_3,omitempty"`
	P_14_3W  string `xml:"P_14_3W,omitempty"`
	P_13_4   string `xml:"P_13_4,omitempty"` // flat rate for taxis (4% / 3%)
	P_14_4   string `xml:"P_14_4,omitempty"`
	P_14_4W  string `xml:"P_14_4W,omitempty"`
	P_13_5   string `xml:"P_13_5,omitempty"` // OSS/IOSS special procedure (section XII ch. 6a)
	P_14_5   string `xml:"P_14_5,omitempty"`
	P_13_6_1 string `xml:"P_13_6_1,omitempty"` // 0% domestic ("0 KR")
	P_13_6_2 string `xml:"P_13_6_2,omitempty"` // 0% intra-Community supply ("0 WDT")
	P_13_6_3 string `xml:"P_13_6_3,omitempty"` // 0% export ("0 EX")
	P_13_7   string `xml:"P_13_7,omitempty"`   // exempt ("zw")
	P_13_8   string `xml:"P_13_8,omitempty"`   // outside Poland ("np I")
	P_13_9   string `xml:"P_13_9,omitempty"`   // services under art. 100(1)(4) ("np II")
	P_13_10  string `xml:"P_13_10,omitempty"`  // reverse charge, buyer pays VAT ("oo")
	P_13_11  string `xml:"P_13_11,omitempty"`  // margin scheme
	P_15     string `xml:"P_15"`               // total amount due

	KursWalutyZ string    `xml:"KursWalutyZ,omitempty"`
	Adnotacje   Adnotacje `xml:"Adnotacje"`

	RodzajFaktury string `xml:"RodzajFaktury"`

	PrzyczynaKorekty   string              `xml:"PrzyczynaKorekty,omitempty"`
	TypKorekty         string              `xml:"TypKorekty,omitempty"`
	DaneFaKorygowanej  []DaneFaKorygowanej `xml:"DaneFaKorygowanej,omitempty"`
	OkresFaKorygowanej string              `xml:"OkresFaKorygowanej,omitempty"`
	NrFaKorygowany     string              `xml:"NrFaKorygowany,omitempty"`
	Podmiot1K          *Podmiot1K          `xml:"Podmiot1K,omitempty"`
	Podmiot2K          []Podmiot2K         `xml:"Podmiot2K,omitempty"`
	P_15ZK             string              `xml:"P_15ZK,omitempty"`
	KursWalutyZK       string              `xml:"KursWalutyZK,omitempty"`

	ZaliczkaCzesciowa []ZaliczkaCzesciowa `xml:"ZaliczkaCzesciowa,omitempty"`
	FP                string              `xml:"FP,omitempty"`
	TP                string              `xml:"TP,omitempty"`
	DodatkowyOpis     []KluczWartosc      `xml:"DodatkowyOpis,omitempty"`
	FakturaZaliczkowa []FakturaZaliczkowa `xml:"FakturaZaliczkowa,omitempty"`
	ZwrotAkcyzy       string              `xml:"ZwrotAkcyzy,omitempty"`
	FaWiersz          []FaWiersz          `xml:"FaWiersz,omitempty"`
	Rozliczenie       *Rozliczenie        `xml:"Rozliczenie,omitempty"`
	Platnosc          *Platnosc           `xml:"Platnosc,omitempty"`
	WarunkiTransakcji *WarunkiTransakcji  `xml:"WarunkiTransakcji,omitempty"`
	Zamowienie        *Zamowienie         `xml:"Zamowienie,omitempty"`
}

// Adnotacje are the mandatory annotations; "1" means yes, "2" no.
type Adnotacje struct {
	P_16                 string               `xml:"P_16"`  // cash accounting (metoda kasowa)
	P_17                 string               `xml:"P_17"`  // self-billing
	P_18                 string               `xml:"P_18"`  // reverse charge
	P_18A                string               `xml:"P_18A"` // split payment
	Zwolnienie           Zwolnienie           `xml:"Zwolnienie"`
	NoweSrodkiTransportu NoweSrodkiTransportu `xml:"NoweSrodkiTransportu"`
	P_23                 string               `xml:"P_23"` // simplified triangular procedure
	PMarzy               PMarzy               `xml:"PMarzy"`
}

// Zwolnienie: either P_19 with one legal basis (P_19A, P_19B or P_19C), or P_19N.
type Zwolnienie struct {
	P_19  string `xml:"P_19,omitempty"`
	P_19A string `xml:"P_19A,omitempty"`
	P_19B string `xml:"P_19B,omitempty"`
	P_19C string `xml:"P_19C,omitempty"`
	P_19N string `xml:"P_19N,omitempty"`
}

// NoweSrodkiTransportu: either P_22 with P_42_5 and the vehicles, or P_22N.
type NoweSrodkiTransportu struct {
	P_22                 string                 `xml:"P_22,omitempty"`
	P_42_5               string                 `xml:"P_42_5,omitempty"`
	NowySrodekTransportu []NowySrodekTransportu `xml:"NowySrodekTransportu,omitempty"`
	P_22N                string                 `xml:"P_22N,omitempty"`
}

// NowySrodekTransportu is an intra-Community supply of a new means of transport.
type NowySrodekTransportu struct {
	P_22A          string `xml:"P_22A"`
	P_NrWierszaNST string `xml:"P_NrWierszaNST"`
	P_22BMK        string `xml:"P_22BMK,omitempty"`
	P_22BMD        string `xml:"P_22BMD,omitempty"`
	P_22BK         string `xml:"P_22BK,omitempty"`
	P_22BNR        string `xml:"P_22BNR,omitempty"`
	P_22BRP        string `xml:"P_22BRP,omitempty"`
	P_22B          string `xml:"P_22B,omitempty"`
	P_22B1         string `xml:"P_22B1,omitempty"`
	P_22B2         string `xml:"P_22B2,omitempty"`
	P_22B3         string `xml:"P_22B3,omitempty"`
	P_22B4         string `xml:"P_22B4,omitempty"`
	P_22BT         string `xml:"P_22BT,omitempty"`
	P_22C          string `xml:"P_22C,omitempty"`
	P_22C1         string `xml:"P_22C1,omitempty"`
	P_22D          string `xml:"P_22D,omitempty"`
	P_22D1         string `xml:"P_22D1,omitempty"`
}

// PMarzy: either P_PMarzy with one of P_PMarzy_2/3_1/3_2/3_3, or P_PMarzyN.
type PMarzy struct {
	P_PMarzy     string `xml:"P_PMarzy,omitempty"`
	P_PMarzy_2   string `xml:"P_PMarzy_2,omitempty"`
	P_PMarzy_3_1 string `xml:"P_PMarzy_3_1,omitempty"`
	P_PMarzy_3_2 string `xml:"P_PMarzy_3_2,omitempty"`
	P_PMarzy_3_3 string `xml:"P_PMarzy_3_3,omitempty"`
	P_PMarzyN    string `xml:"P_PMarzyN,omitempty"`
}

// DaneFaKorygowanej identifies a corrected invoice: NrKSeF=1 with
// NrKSeFFaKorygowanej when it was issued in KSeF, otherwise NrKSeFN=1.
type DaneFaKorygowanej struct {
	DataWystFaKorygowanej string `xml:"DataWystFaKorygowanej"`
	NrFaKorygowanej       string `xml:"NrFaKorygowanej"`
	NrKSeF                string `xml:"NrKSeF,omitempty"`
	NrKSeFFaKorygowanej   string `xml:"NrKSeFFaKorygowanej,omitempty"`
	NrKSeFN               string `xml:"NrKSeFN,omitempty"`
}

// Podmiot1K is the seller's data as on the corrected invoice.
type Podmiot1K struct {
	PrefiksPodatnika    string              `xml:"PrefiksPodatnika,omitempty"`
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	Adres               Adres               `xml:"Adres"`
}

// Podmiot2K is a buyer's data as on the corrected invoice.
type Podmiot2K struct {
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	Adres               *Adres              `xml:"Adres,omitempty"`
	IDNabywcy           string              `xml:"IDNabywcy,omitempty"`
}

// ZaliczkaCzesciowa is one of several advance payments documented by one invoice.
type ZaliczkaCzesciowa struct {
	P_6Z         string `xml:"P_6Z"`
	P_15Z        string `xml:"P_15Z"`
	KursWalutyZW string `xml:"KursWalutyZW,omitempty"`
}

// KluczWartosc is a free key/value pair (DodatkowyOpis).
type KluczWartosc struct {
	NrWiersza string `xml:"NrWiersza,omitempty"`
	Klucz     string `xml:"Klucz"`
	Wartosc   string `xml:"Wartosc"`
}

// FakturaZaliczkowa references an advance invoice settled by a ROZ invoice.
type FakturaZaliczkowa struct {
	NrKSeFZN            string `xml:"NrKSeFZN,omitempty"`
	NrFaZaliczkowej     string `xml:"NrFaZaliczkowej,omitempty"`
	NrKSeFFaZaliczkowej string `xml:"NrKSeFFaZaliczkowej,omitempty"`
}

// FaWiersz is one invoice line, in the invoice currency.
type FaWiersz struct {
	NrWierszaFa string `xml:"NrWierszaFa"`
	UU_ID       string `xml:"UU_ID,omitempty"`
	P_6A        string `xml:"P_6A,omitempty"` // date of supply of this line
	P_7         string `xml:"P_7,omitempty"`  // name of goods or service
	Indeks      string `xml:"Indeks,omitempty"`
	GTIN        string `xml:"GTIN,omitempty"`
	PKWiU       string `xml:"PKWiU,omitempty"`
	CN          string `xml:"CN,omitempty"`
	PKOB        string `xml:"PKOB,omitempty"`
	P_8A        string `xml:"P_8A,omitempty"`    // unit of measure
	P_8B        string `xml:"P_8B,omitempty"`    // quantity
	P_9A        string `xml:"P_9A,omitempty"`    // unit net price
	P_9B        string `xml:"P_9B,omitempty"`    // unit gross price
	P_10        string `xml:"P_10,omitempty"`    // discounts
	P_11        string `xml:"P_11,omitempty"`    // net value
	P_11A       string `xml:"P_11A,omitempty"`   // gross value
	P_11Vat     string `xml:"P_11Vat,omitempty"` // VAT amount
	P_12        string `xml:"P_12,omitempty"`    // VAT rate: 23, 22, 8, 7, 5, 4, 3, 0 KR, 0 WDT, 0 EX, zw, oo, np I, np II
	P_12_XII    string `xml:"P_12_XII,omitempty"`
	P_12_Zal_15 string `xml:"P_12_Zal_15,omitempty"`
	KwotaAkcyzy string `xml:"KwotaAkcyzy,omitempty"`
	GTU         string `xml:"GTU,omitempty"`
	Procedura   string `xml:"Procedura,omitempty"`
	KursWaluty  string `xml:"KursWaluty,omitempty"`
	StanPrzed   string `xml:"StanPrzed,omitempty"` // 1 = line shows the state before correction
}

// KwotaPowod is an amount with its reason (Rozliczenie/Obciazenia, Odliczenia).
type KwotaPowod struct {
	Kwota string `xml:"Kwota"`
	Powod string `xml:"Powod"`
}

// Rozliczenie holds additional charges and deductions.
type Rozliczenie struct {
	Obciazenia    []KwotaPowod `xml:"Obciazenia,omitempty"`
	SumaObciazen  string       `xml:"SumaObciazen,omitempty"`
	Odliczenia    []KwotaPowod `xml:"Odliczenia,omitempty"`
	SumaOdliczen  string       `xml:"SumaOdliczen,omitempty"`
	DoZaplaty     string       `xml:"DoZaplaty,omitempty"`
	DoRozliczenia string       `xml:"DoRozliczenia,omitempty"`
}

// ZaplataCzesciowa is one partial payment already made.
type ZaplataCzesciowa struct {
	KwotaZaplatyCzesciowej string `xml:"KwotaZaplatyCzesciowej"`
	DataZaplatyCzesciowej  string `xml:"DataZaplatyCzesciowej"`
	FormaPlatnosci         string `xml:"FormaPlatnosci,omitempty"`
	PlatnoscInna           string `xml:"PlatnoscInna,omitempty"`
	OpisPlatnosci          string `xml:"OpisPlatnosci,omitempty"`
}

// TerminOpis describes a payment term relative to an event (FA(3): structured, not text).
type TerminOpis struct {
	Ilosc               string `xml:"Ilosc"`
	Jednostka           string `xml:"Jednostka"`
	ZdarzeniePoczatkowe string `xml:"ZdarzeniePoczatkowe"`
}

// TerminPlatnosci is a payment due date and/or its description.
type TerminPlatnosci struct {
	Termin     string      `xml:"Termin,omitempty"`
	TerminOpis *TerminOpis `xml:"TerminOpis,omitempty"`
}

// RachunekBankowy is a bank account (TRachunekBankowy).
type RachunekBankowy struct {
	NrRB                string `xml:"NrRB"`
	SWIFT               string `xml:"SWIFT,omitempty"`
	RachunekWlasnyBanku string `xml:"RachunekWlasnyBanku,omitempty"`
	NazwaBanku          string `xml:"NazwaBanku,omitempty"`
	OpisRachunku        string `xml:"OpisRachunku,omitempty"`
}

// Skonto is a cash discount.
type Skonto struct {
	WarunkiSkonta  string `xml:"WarunkiSkonta"`
	WysokoscSkonta string `xml:"WysokoscSkonta"`
}

// Platnosc holds payment terms. FormaPlatnosci: 1 cash, 2 card, 3 voucher,
// 4 cheque, 5 credit, 6 transfer, 7 mobile.
type Platnosc struct {
	Zaplacono                 string             `xml:"Zaplacono,omitempty"`
	DataZaplaty               string             `xml:"DataZaplaty,omitempty"`
	ZnacznikZaplatyCzesciowej string             `xml:"ZnacznikZaplatyCzesciowej,omitempty"`
	ZaplataCzesciowa          []ZaplataCzesciowa `xml:"ZaplataCzesciowa,omitempty"`
	TerminPlatnosci           []TerminPlatnosci  `xml:"TerminPlatnosci,omitempty"`
	FormaPlatnosci            string             `xml:"FormaPlatnosci,omitempty"`
	PlatnoscInna              string             `xml:"PlatnoscInna,omitempty"`
	OpisPlatnosci             string             `xml:"OpisPlatnosci,omitempty"`
	RachunekBankowy           []RachunekBankowy  `xml:"RachunekBankowy,omitempty"`
	RachunekBankowyFaktora    []RachunekBankowy  `xml:"RachunekBankowyFaktora,omitempty"`
	Skonto                    *Skonto            `xml:"Skonto,omitempty"`
	LinkDoPlatnosci           string             `xml:"LinkDoPlatnosci,omitempty"`
	IPKSeF                    string             `xml:"IPKSeF,omitempty"`
}

// Umowa is a contract reference.
type Umowa struct {
	DataUmowy string `xml:"DataUmowy,omitempty"`
	NrUmowy   string `xml:"NrUmowy,omitempty"`
}

// ZamowienieRef is a purchase order reference (WarunkiTransakcji/Zamowienia).
type ZamowienieRef struct {
	DataZamowienia string `xml:"DataZamowienia,omitempty"`
	NrZamowienia   string `xml:"NrZamowienia,omitempty"`
}

// Przewoznik is a carrier.
type Przewoznik struct {
	DaneIdentyfikacyjne DaneIdentyfikacyjne `xml:"DaneIdentyfikacyjne"`
	AdresPrzewoznika    Adres               `xml:"AdresPrzewoznika"`
}

// Transport describes the transport of goods.
type Transport struct {
	RodzajTransportu       string      `xml:"RodzajTransportu,omitempty"`
	TransportInny          string      `xml:"TransportInny,omitempty"`
	OpisInnegoTransportu   string      `xml:"OpisInnegoTransportu,omitempty"`
	Przewoznik             *Przewoznik `xml:"Przewoznik,omitempty"`
	NrZleceniaTransportu   string      `xml:"NrZleceniaTransportu,omitempty"`
	OpisLadunku            string      `xml:"OpisLadunku,omitempty"`
	LadunekInny            string      `xml:"LadunekInny,omitempty"`
	OpisInnegoLadunku      string      `xml:"OpisInnegoLadunku,omitempty"`
	JednostkaOpakowania    string      `xml:"JednostkaOpakowania,omitempty"`
	DataGodzRozpTransportu string      `xml:"DataGodzRozpTransportu,omitempty"`
	DataGodzZakTransportu  string      `xml:"DataGodzZakTransportu,omitempty"`
	WysylkaZ               *Adres      `xml:"WysylkaZ,omitempty"`
	WysylkaPrzez           []Adres     `xml:"WysylkaPrzez,omitempty"`
	WysylkaDo              *Adres      `xml:"WysylkaDo,omitempty"`
}

// WarunkiTransakcji holds terms of the transaction.
type WarunkiTransakcji struct {
	Umowy                []Umowa         `xml:"Umowy,omitempty"`
	Zamowienia           []ZamowienieRef `xml:"Zamowienia,omitempty"`
	NrPartiiTowaru       []string        `xml:"NrPartiiTowaru,omitempty"`
	WarunkiDostawy       string          `xml:"WarunkiDostawy,omitempty"`
	KursUmowny           string          `xml:"KursUmowny,omitempty"`
	WalutaUmowna         string          `xml:"WalutaUmowna,omitempty"`
	Transport            []Transport     `xml:"Transport,omitempty"`
	PodmiotPosredniczacy string          `xml:"PodmiotPosredniczacy,omitempty"`
}

// Zamowienie is the order or contract an advance invoice (ZAL) is for.
type Zamowienie struct {
	WartoscZamowienia string             `xml:"WartoscZamowienia"`
	ZamowienieWiersz  []ZamowienieWiersz `xml:"ZamowienieWiersz"`
}

// ZamowienieWiersz is one line of the order (fields as in FaWiersz with suffix Z).
type ZamowienieWiersz struct {
	NrWierszaZam string `xml:"NrWierszaZam"`
	UU_IDZ       string `xml:"UU_IDZ,omitempty"`
	P_7Z         string `xml:"P_7Z,omitempty"`
	IndeksZ      string `xml:"IndeksZ,omitempty"`
	GTINZ        string `xml:"GTINZ,omitempty"`
	PKWiUZ       string `xml:"PKWiUZ,omitempty"`
	CNZ          string `xml:"CNZ,omitempty"`
	PKOBZ        string `xml:"PKOBZ,omitempty"`
	P_8AZ        string `xml:"P_8AZ,omitempty"`
	P_8BZ        string `xml:"P_8BZ,omitempty"`
	P_9AZ        string `xml:"P_9AZ,omitempty"`
	P_11NettoZ   string `xml:"P_11NettoZ,omitempty"`
	P_11VatZ     string `xml:"P_11VatZ,omitempty"`
	P_12Z        string `xml:"P_12Z,omitempty"`
	P_12Z_XII    string `xml:"P_12Z_XII,omitempty"`
	P_12Z_Zal_15 string `xml:"P_12Z_Zal_15,omitempty"`
	GTUZ         string `xml:"GTUZ,omitempty"`
	ProceduraZ   string `xml:"ProceduraZ,omitempty"`
	KwotaAkcyzyZ string `xml:"KwotaAkcyzyZ,omitempty"`
	StanPrzedZ   string `xml:"StanPrzedZ,omitempty"`
}

// Stopka is the footer.
type Stopka struct {
	Informacje []Informacje `xml:"Informacje,omitempty"`
	Rejestry   []Rejestry   `xml:"Rejestry,omitempty"`
}

// Informacje is a free-text footer entry.
type Informacje struct {
	StopkaFaktury string `xml:"StopkaFaktury,omitempty"`
}

// Rejestry holds registry numbers of the seller.
type Rejestry struct {
	PelnaNazwa string `xml:"PelnaNazwa,omitempty"`
	KRS        string `xml:"KRS,omitempty"`
	REGON      string `xml:"REGON,omitempty"`
	BDO        string `xml:"BDO,omitempty"`
}

// Zalacznik is the structured attachment.
type Zalacznik struct {
	BlokDanych []BlokDanych `xml:"BlokDanych"`
}

// BlokDanych is one block of the attachment.
type BlokDanych struct {
	ZNaglowek string     `xml:"ZNaglowek,omitempty"`
	MetaDane  []MetaDane `xml:"MetaDane"`
	Tekst     *Tekst     `xml:"Tekst,omitempty"`
	Tabela    []Tabela   `xml:"Tabela,omitempty"`
}

// MetaDane is a key/value pair of an attachment block.
type MetaDane struct {
	ZKlucz   string `xml:"ZKlucz"`
	ZWartosc string `xml:"ZWartosc"`
}

// Tekst is the text part of an attachment block.
type Tekst struct {
	Akapit []string `xml:"Akapit"`
}

// Tabela is a table in an attachment block.
type Tabela struct {
	TMetaDane []TMetaDane `xml:"TMetaDane,omitempty"`
	Opis      string      `xml:"Opis,omitempty"`
	TNaglowek TNaglowek   `xml:"TNaglowek"`
	Wiersz    []Wiersz    `xml:"Wiersz"`
	Suma      *Suma       `xml:"Suma,omitempty"`
}

// TMetaDane is a key/value pair describing a table.
type TMetaDane struct {
	TKlucz   string `xml:"TKlucz"`
	TWartosc string `xml:"TWartosc"`
}

// TNaglowek is a table header.
type TNaglowek struct {
	Kol []Kol `xml:"Kol"`
}

// Kol is a column header; Typ is date, datetime, dec, int, time or txt.
type Kol struct {
	Typ  string `xml:"Typ,attr"`
	NKom string `xml:"NKom"`
}

// Wiersz is a table row.
type Wiersz struct {
	WKom []string `xml:"WKom"`
}

// Suma is a table summary row.
type Suma struct {
	SKom []string `xml:"SKom"`
}

// SellerNIP returns the seller's NIP (Podmiot1).
func (inv *Invoice) SellerNIP() string { return inv.Podmiot1.DaneIdentyfikacyjne.NIP }

// BuyerNIP returns the buyer's Polish NIP, or "" when the buyer is identified otherwise.
func (inv *Invoice) BuyerNIP() string { return inv.Podmiot2.DaneIdentyfikacyjne.NIP }

// InvoiceNumber returns the seller's invoice number (P_2).
func (inv *Invoice) InvoiceNumber() string { return inv.Fa.P_2 }

// InvoiceType returns RodzajFaktury (VAT, KOR, ZAL, ROZ, UPR, KOR_ZAL, KOR_ROZ).
func (inv *Invoice) InvoiceType() string { return inv.Fa.RodzajFaktury }

// IssueDate returns the issue date P_1 (YYYY-MM-DD).
func (inv *Invoice) IssueDate() string { return inv.Fa.P_1 }

// Currency returns KodWaluty.
func (inv *Invoice) Currency() string { return inv.Fa.KodWaluty }

// GrossTotal returns P_15, the total amount due, as written.
func (inv *Invoice) GrossTotal() string { return inv.Fa.P_15 }

// IsCorrection reports whether the invoice is a correcting invoice (KOR, KOR_ZAL, KOR_ROZ).
func (inv *Invoice) IsCorrection() bool {
	switch inv.Fa.RodzajFaktury {
	case TypeKOR, TypeKORZAL, TypeKORROZ:
		return true
	}
	return false
}

// DuplicateKey identifies an invoice for duplicate detection as KSeF does:
// seller NIP, invoice type and invoice number (P_2).
func (inv *Invoice) DuplicateKey() string {
	return inv.SellerNIP() + "|" + inv.InvoiceType() + "|" + inv.InvoiceNumber()
}
