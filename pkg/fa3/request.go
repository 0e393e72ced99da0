package fa3

import "time"

// InvoiceRequest is the structured invoice data that Generate turns into an FA(3) document: the
// domain's own type, not the KSeF API's wire type (the emulator and the workers convert the API's
// generate request to it). Empty strings, zero times and nil pointers are absent values; field
// comments name the FA(3) element each one fills.
type InvoiceRequest struct {
	// Type is RodzajFaktury: TypeVAT (the default when empty), TypeKOR, TypeZAL, TypeROZ,
	// TypeUPR, TypeKORZAL or TypeKORROZ.
	Type   string
	Number string // P_2, required
	// IssueDate is P_1 (required) and SaleDate P_6; only the date in the time's own location
	// is written.
	IssueDate, SaleDate time.Time
	PlaceOfIssue        string // P_1M
	Currency            string // KodWaluty (ISO 4217), PLN when empty
	// ExchangeRate is the PLN rate of a foreign currency (an xsd:decimal such as "4.2618"),
	// for the VAT amounts in PLN (P_14_xW); WithExchangeRate overrides it.
	ExchangeRate string
	// ExemptionBasis is the legal basis (P_19A) written when a line is exempt ("zw");
	// DefaultExemptionBasis when empty; WithExemptionBasis overrides it.
	ExemptionBasis string
	SystemInfo     string // Naglowek/SystemInfo, DefaultSystemInfo when empty

	Seller Party // Podmiot1: NIP, name and address required
	Buyer  Party // Podmiot2: name and address required; NIP, else EU VAT number, else foreign id
	Lines  []Line

	CashAccounting bool // P_16 (metoda kasowa)
	ReverseCharge  bool // P_18 (odwrotne obciążenie); set anyway when a line has rate "oo"
	SplitPayment   bool // P_18A (mechanizm podzielonej płatności)

	// Correction is the corrected invoice: required for the correcting types, refused for the
	// others.
	Correction *Correction
	Payment    *Payment // Platnosc
}

// Party is the seller or the buyer.
type Party struct {
	NIP       string // Polish NIP (sellers always; buyers when Polish)
	EUVatID   string // EU VAT number with its country prefix, for EU buyers without NIP
	ForeignID string // tax identifier of a buyer outside the EU
	Name      string
	Email     string
	Phone     string
	Address   Address
}

// Address is an Adres.
type Address struct {
	CountryCode string // ISO 3166 alpha-2
	Line1       string // required
	Line2       string
}

// Line is one line of the invoice (FaWiersz; ZamowienieWiersz on advance invoices).
type Line struct {
	Name         string // P_7
	Unit         string // P_8A
	Quantity     string // P_8B: a decimal with at most 6 fraction digits
	UnitNetPrice string // P_9A: a decimal with at most 8 fraction digits
	// VATRate is P_12: "23", "22", "8", "7", "5", "4", "3", "0 KR", "0 WDT", "0 EX", "zw",
	// "oo", "np I" or "np II".
	VATRate string
	GTU     string // GTU_01..GTU_13
}

// Correction identifies the invoice a correcting invoice corrects (DaneFaKorygowanej).
type Correction struct {
	Number     string    // NrFaKorygowanej, required
	IssueDate  time.Time // DataWystFaKorygowanej, required
	KSeFNumber string    // NrKSeFFaKorygowanej, empty when the invoice was issued outside KSeF
	Reason     string    // PrzyczynaKorekty
}

// Payment is Platnosc.
type Payment struct {
	Paid     bool      // Zaplacono
	PaidDate time.Time // DataZaplaty; the issue date when paid and zero
	DueDate  time.Time // TerminPlatnosci
	// Method is FormaPlatnosci: 1 cash, 2 card, 3 voucher, 4 cheque, 5 credit, 6 transfer,
	// 7 mobile; 0 none.
	Method      int
	BankAccount string // NrRB
}
