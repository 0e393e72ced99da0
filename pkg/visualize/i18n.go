package visualize

import "fmt"

// text is a label in Polish and English.
type text struct{ pl, en string }

// tr picks the text for a language; pl_en joins both as "Polski / English"
// (once when they are equal, e.g. "NIP" or "SWIFT").
func (l Language) tr(t text) string {
	switch l {
	case LangEN:
		return t.en
	case LangPLEN:
		if t.pl == t.en {
			return t.pl
		}
		return t.pl + " / " + t.en
	default:
		return t.pl
	}
}

// trf is tr for a label with fmt verbs, formatting each language's text.
func (l Language) trf(t text, args ...any) string {
	return l.tr(text{fmt.Sprintf(t.pl, args...), fmt.Sprintf(t.en, args...)})
}

// pageLabel is the page footer, with total being the page count or an alias
// for it.
func (l Language) pageLabel(n int, total string) string {
	switch l {
	case LangEN:
		return fmt.Sprintf("Page %d of %s", n, total)
	case LangPLEN:
		return fmt.Sprintf("Strona / Page %d z / of %s", n, total)
	default:
		return fmt.Sprintf("Strona %d z %s", n, total)
	}
}

// Labels. Keep them as package-level values (read-only) so that a typo is a
// compile error rather than a missing translation.
var (
	lblKSeFSystem = text{"Krajowy System e-Faktur", "National e-Invoice System (KSeF)"}
	lblInvoiceNo  = text{"Numer faktury", "Invoice number"}
	lblKSeFNo     = text{"Numer KSeF", "KSeF number"}
	lblNoKSeFNo   = text{"nie został jeszcze nadany", "not assigned yet"}
	lblOffline    = text{"Faktura wystawiona w trybie offline", "Invoice issued in offline mode"}

	lblSeller       = text{"Sprzedawca", "Seller"}
	lblBuyer        = text{"Nabywca", "Buyer"}
	lblThirdParties = text{"Podmiot trzeci", "Third party"}
	lblAuthorized   = text{"Podmiot upoważniony", "Authorised entity"}
	lblNIP          = text{"NIP", "NIP"}
	lblEUVAT        = text{"Numer VAT UE", "EU VAT number"}
	lblTaxID        = text{"Identyfikator podatkowy", "Tax identifier"}
	lblNoID         = text{"Brak identyfikatora podatkowego", "No tax identifier"}
	lblInternalID   = text{"Identyfikator wewnętrzny", "Internal identifier"}
	lblName         = text{"Nazwa", "Name"}
	lblAddress      = text{"Adres", "Address"}
	lblCorrAddress  = text{"Adres do korespondencji", "Correspondence address"}
	lblEmail        = text{"E-mail", "E-mail"}
	lblPhone        = text{"Tel.", "Phone"}
	lblEORI         = text{"Numer EORI", "EORI number"}
	lblCustomerNo   = text{"Numer klienta", "Customer number"}
	lblBuyerID      = text{"Identyfikator nabywcy", "Buyer identifier"}
	lblJST          = text{"Jednostka podrzędna JST", "Subordinate unit of a local government"}
	lblGV           = text{"Członek grupy VAT", "Member of a VAT group"}
	lblRole         = text{"Rola", "Role"}
	lblShare        = text{"Udział", "Share"}
	lblStatus       = text{"Status podatnika", "Taxpayer status"}
	lblGLN          = text{"GLN", "GLN"}
	lblYes          = text{"Tak", "Yes"}
	lblPoland       = text{"Polska", "Poland"}

	lblDetails     = text{"Szczegóły", "Details"}
	lblIssueDate   = text{"Data wystawienia", "Issue date"}
	lblIssuePlace  = text{"Miejsce wystawienia", "Place of issue"}
	lblSupplyDate  = text{"Data dokonania lub zakończenia dostawy towarów lub wykonania usługi", "Date of supply of goods or services"}
	lblPeriod      = text{"Okres, którego dotyczy faktura", "Period covered by the invoice"}
	lblPeriodFmt   = text{"od %s do %s", "from %s to %s"}
	lblCurrency    = text{"Waluta", "Currency"}
	lblFxRateZ     = text{"Kurs waluty do przeliczenia podatku", "Exchange rate for VAT"}
	lblWZ          = text{"Numer dokumentu WZ", "Goods dispatch note number (WZ)"}
	lblFP          = text{"Faktura, o której mowa w art. 109 ust. 3d ustawy (do paragonu)", "Invoice for a receipt (art. 109(3d) of the VAT Act)"}
	lblTP          = text{"Istniejące powiązania między nabywcą a dokonującym dostawy (TP)", "Related parties (TP)"}
	lblExciseRef   = text{"Zwrot akcyzy (rolnik)", "Excise duty refund (farmer)"}
	lblCreatedAt   = text{"Data wytworzenia faktury", "Invoice created"}
	lblGeneratedIn = text{"Wytworzona w", "Generated in"}

	lblCorrection      = text{"Dane faktury korygowanej", "Corrected invoice"}
	lblCorrReason      = text{"Przyczyna korekty", "Reason for correction"}
	lblCorrType        = text{"Typ skutku korekty", "Correction effective"}
	lblCorrPeriod      = text{"Okres, którego dotyczy rabat", "Period of the discount"}
	lblCorrNo          = text{"Numer faktury korygowanej", "Corrected invoice number"}
	lblCorrDate        = text{"Data wystawienia faktury korygowanej", "Corrected invoice issue date"}
	lblCorrKSeF        = text{"Numer KSeF faktury korygowanej", "KSeF number of the corrected invoice"}
	lblOutsideKSeF     = text{"faktura wystawiona poza KSeF", "invoice issued outside KSeF"}
	lblCorrectedNumber = text{"Poprawny numer faktury korygowanej", "Correct number of the corrected invoice"}
	lblSellerBefore    = text{"Sprzedawca na fakturze korygowanej", "Seller on the corrected invoice"}
	lblBuyerBefore     = text{"Nabywca na fakturze korygowanej", "Buyer on the corrected invoice"}
	lblP15ZK           = text{"Kwota zapłaty przed korektą", "Amount paid before correction"}
	lblFxRateZK        = text{"Kurs waluty przed korektą", "Exchange rate before correction"}

	lblAdvances      = text{"Faktury zaliczkowe", "Advance invoices"}
	lblAdvNo         = text{"Numer faktury zaliczkowej", "Advance invoice number"}
	lblAdvKSeF       = text{"Numer KSeF faktury zaliczkowej", "KSeF number of the advance invoice"}
	lblPartialAdv    = text{"Zaliczki częściowe", "Partial advance payments"}
	lblAdvDate       = text{"Data otrzymania zapłaty", "Payment received on"}
	lblAdvAmount     = text{"Kwota zapłaty", "Amount paid"}
	lblFxRate        = text{"Kurs waluty", "Exchange rate"}
	lblOrder         = text{"Zamówienie lub umowa", "Order or contract"}
	lblOrderValue    = text{"Wartość zamówienia lub umowy z uwzględnieniem kwoty podatku", "Order or contract value including VAT"}
	lblLines         = text{"Pozycje", "Items"}
	lblNetPricesIn   = text{"Faktura wystawiona w cenach netto w walucie %s", "Invoice issued in net prices in %s"}
	lblGrossPricesIn = text{"Faktura wystawiona w cenach brutto w walucie %s", "Invoice issued in gross prices in %s"}
	lblBeforeCorr    = text{"stan przed korektą", "before correction"}
	lblAfterCorr     = text{"Pozycje po korekcie oraz stan przed korektą (wiersze wyszarzone)", "Items after correction and the state before correction (greyed rows)"}

	colNo        = text{"Lp.", "No."}
	colName      = text{"Nazwa towaru lub usługi", "Goods or service"}
	colUnitNet   = text{"Cena jedn. netto", "Unit net price"}
	colUnitGross = text{"Cena jedn. brutto", "Unit gross price"}
	colQty       = text{"Ilość", "Qty"}
	colUnit      = text{"Miara", "Unit"}
	colDiscount  = text{"Rabat", "Discount"}
	colRate      = text{"Stawka podatku", "VAT rate"}
	colNet       = text{"Wartość sprzedaży netto", "Net value"}
	colGross     = text{"Wartość sprzedaży brutto", "Gross value"}
	colVAT       = text{"Kwota VAT", "VAT amount"}
	colFx        = text{"Kurs waluty", "Exch. rate"}
	colSupply    = text{"Data dostawy", "Supply date"}
	colExcise    = text{"Kwota akcyzy", "Excise"}
	colNetAmt    = text{"Kwota netto", "Net amount"}
	colVATAmt    = text{"Kwota podatku", "VAT amount"}
	colGrossAmt  = text{"Kwota brutto", "Gross amount"}
	colVATPLN    = text{"Kwota podatku PLN", "VAT amount in PLN"}
	colKey       = text{"Rodzaj informacji", "Key"}
	colValue     = text{"Treść informacji", "Value"}
	colLineRef   = text{"Dotyczy wiersza", "Line"}
	colReason    = text{"Powód", "Reason"}
	colAmount    = text{"Kwota", "Amount"}
	colDate      = text{"Data", "Date"}
	colNumber    = text{"Numer", "Number"}
	colAccount   = text{"Numer rachunku", "Account number"}
	colSWIFT     = text{"SWIFT", "SWIFT"}
	colBank      = text{"Nazwa banku", "Bank name"}
	colAccDescr  = text{"Opis rachunku", "Account description"}
	colPayForm   = text{"Forma płatności", "Payment method"}

	lblIndex     = text{"Indeks", "Index"}
	lblGTIN      = text{"GTIN", "GTIN"}
	lblPKWiU     = text{"PKWiU", "PKWiU"}
	lblCN        = text{"CN", "CN"}
	lblPKOB      = text{"PKOB", "PKOB"}
	lblGTU       = text{"GTU", "GTU"}
	lblProcedure = text{"Procedura", "Procedure"}
	lblAnnex15   = text{"Zał. 15", "Annex 15"}
	lblOSSRate   = text{"stawka OSS", "OSS rate"}

	lblTotalDue   = text{"Kwota należności ogółem", "Total amount due"}
	lblVATSummary = text{"Podsumowanie stawek podatku", "VAT rate summary"}

	lblAnnotations = text{"Adnotacje", "Annotations"}
	lblP16         = text{"Metoda kasowa", "Cash accounting"}
	lblP17         = text{"Samofakturowanie", "Self-billing"}
	lblP18         = text{"Odwrotne obciążenie", "Reverse charge"}
	lblP18A        = text{"Mechanizm podzielonej płatności", "Split payment mechanism"}
	lblP19         = text{"Dostawa towarów lub świadczenie usług zwolnionych od podatku", "Supply of goods or services exempt from VAT"}
	lblP19A        = text{"Przepis ustawy albo aktu wydanego na podstawie ustawy", "Provision of the VAT Act or of secondary legislation"}
	lblP19B        = text{"Przepis dyrektywy 2006/112/WE", "Provision of Directive 2006/112/EC"}
	lblP19C        = text{"Inna podstawa prawna", "Other legal basis"}
	lblP22         = text{"Wewnątrzwspólnotowa dostawa nowych środków transportu", "Intra-Community supply of new means of transport"}
	lblP23         = text{"VAT: Faktura WE uproszczona na mocy art. 135-138 ustawy o ptu", "VAT: simplified EU triangular invoice (art. 135-138 of the VAT Act)"}
	lblPMarzy2     = text{"Procedura marży dla biur podróży", "Margin scheme: travel agents"}
	lblPMarzy31    = text{"Procedura marży - towary używane", "Margin scheme: second-hand goods"}
	lblPMarzy32    = text{"Procedura marży - dzieła sztuki", "Margin scheme: works of art"}
	lblPMarzy33    = text{"Procedura marży - przedmioty kolekcjonerskie i antyki", "Margin scheme: collector's items and antiques"}

	lblAdditional = text{"Dodatkowe informacje", "Additional information"}

	lblSettlement    = text{"Rozliczenie", "Settlement"}
	lblCharges       = text{"Obciążenia", "Charges"}
	lblDeductions    = text{"Odliczenia", "Deductions"}
	lblSumCharges    = text{"Suma obciążeń", "Total charges"}
	lblSumDeductions = text{"Suma odliczeń", "Total deductions"}
	lblToPay         = text{"Do zapłaty", "Amount to pay"}
	lblToSettle      = text{"Do rozliczenia", "Amount to settle"}

	lblPayment       = text{"Płatność", "Payment"}
	lblPaymentInfo   = text{"Informacja o płatności", "Payment status"}
	lblPaid          = text{"Zapłacono", "Paid"}
	lblPaidPartially = text{"Zapłacono częściowo", "Partially paid"}
	lblPaidInParts   = text{"Zapłacono w całości w częściach", "Paid in full in instalments"}
	lblPaidDate      = text{"Data zapłaty", "Payment date"}
	lblPartialPays   = text{"Zapłaty częściowe", "Partial payments"}
	lblPayForm       = text{"Forma płatności", "Payment method"}
	lblPayOther      = text{"Inna forma płatności", "Other payment method"}
	lblDueDate       = text{"Termin płatności", "Payment due"}
	lblDueFrom       = text{"od", "from"}
	lblBankAccount   = text{"Numer rachunku bankowego", "Bank account"}
	lblFactorAccount = text{"Rachunek bankowy faktora", "Factor's bank account"}
	lblSkontoTerms   = text{"Warunki skonta", "Discount terms"}
	lblSkontoAmount  = text{"Wysokość skonta", "Discount amount"}
	lblPayLink       = text{"Link do płatności", "Payment link"}
	lblIPKSeF        = text{"Identyfikator płatności KSeF", "KSeF payment identifier"}
	lblOwnBankAcc    = text{"Rachunek własny banku", "Bank's own account"}

	lblTerms          = text{"Warunki transakcji", "Terms of transaction"}
	lblContracts      = text{"Umowy", "Contracts"}
	lblOrders         = text{"Zamówienia", "Orders"}
	lblBatch          = text{"Numer partii towaru", "Batch number"}
	lblDeliveryTerms  = text{"Warunki dostawy", "Delivery terms"}
	lblContractRate   = text{"Kurs umowny", "Contractual exchange rate"}
	lblContractCurr   = text{"Waluta umowna", "Contractual currency"}
	lblTransport      = text{"Transport", "Transport"}
	lblTransportKind  = text{"Rodzaj transportu", "Mode of transport"}
	lblCarrier        = text{"Przewoźnik", "Carrier"}
	lblTransportOrder = text{"Numer zlecenia transportu", "Transport order number"}
	lblCargo          = text{"Rodzaj ładunku", "Cargo"}
	lblPackaging      = text{"Jednostka opakowania", "Packaging unit"}
	lblTransportStart = text{"Rozpoczęcie transportu", "Transport start"}
	lblTransportEnd   = text{"Zakończenie transportu", "Transport end"}
	lblShipFrom       = text{"Wysyłka z", "Shipped from"}
	lblShipVia        = text{"Wysyłka przez", "Shipped via"}
	lblShipTo         = text{"Wysyłka do", "Shipped to"}
	lblIntermediary   = text{"Podmiot pośredniczący (art. 22 ust. 2d ustawy)", "Intermediary (art. 22(2d) of the VAT Act)"}
	lblOtherTransport = text{"Inny rodzaj transportu", "Other transport"}
	lblOtherCargo     = text{"Inny ładunek", "Other cargo"}
	lblFooterSection  = text{"Pozostałe informacje", "Other information"}
	lblFooterText     = text{"Stopka faktury", "Invoice footer"}
	lblRegisters      = text{"Rejestry", "Registers"}
	lblFullName       = text{"Pełna nazwa", "Full name"}
	lblAttachment     = text{"Załącznik do faktury", "Invoice attachment"}
	lblQRTitle        = text{"Sprawdź, czy Twoja faktura znajduje się w KSeF!", "Check that your invoice is in KSeF!"}
	lblQRHint         = text{"Nie możesz zeskanować kodu z obrazka? Kliknij w link weryfikacyjny i przejdź do weryfikacji faktury:", "Cannot scan the code? Open the verification link to verify the invoice:"}
	lblQRCertTitle    = text{"Weryfikacja wystawcy faktury (certyfikat KSeF)", "Verify the issuer of the invoice (KSeF certificate)"}
)

// invoiceTitles names each RodzajFaktury.
var invoiceTitles = map[string]text{
	"VAT":     {"Faktura VAT", "VAT invoice"},
	"KOR":     {"Faktura korygująca", "Corrective invoice"},
	"ZAL":     {"Faktura zaliczkowa", "Advance invoice"},
	"ROZ":     {"Faktura rozliczeniowa", "Settlement invoice"},
	"UPR":     {"Faktura uproszczona", "Simplified invoice"},
	"KOR_ZAL": {"Faktura korygująca fakturę zaliczkową", "Correction of an advance invoice"},
	"KOR_ROZ": {"Faktura korygująca fakturę rozliczeniową", "Correction of a settlement invoice"},
}

// Code lists of the FA(3) schema.
var (
	paymentForms = map[string]text{
		"1": {"Gotówka", "Cash"},
		"2": {"Karta", "Card"},
		"3": {"Bon", "Voucher"},
		"4": {"Czek", "Cheque"},
		"5": {"Kredyt", "Credit"},
		"6": {"Przelew", "Bank transfer"},
		"7": {"Mobilna", "Mobile payment"},
	}
	thirdPartyRoles = map[string]text{
		"1":  {"Faktor", "Factor"},
		"2":  {"Odbiorca", "Recipient"},
		"3":  {"Podmiot pierwotny", "Original entity"},
		"4":  {"Dodatkowy nabywca", "Additional buyer"},
		"5":  {"Wystawca faktury", "Issuer of the invoice"},
		"6":  {"Dokonujący płatności", "Payer"},
		"7":  {"Jednostka samorządu terytorialnego - wystawca", "Local government unit - issuer"},
		"8":  {"Jednostka samorządu terytorialnego - odbiorca", "Local government unit - recipient"},
		"9":  {"Członek grupy VAT - wystawca", "VAT group member - issuer"},
		"10": {"Członek grupy VAT - odbiorca", "VAT group member - recipient"},
		"11": {"Pracownik", "Employee"},
	}
	authorizedRoles = map[string]text{
		"1": {"Organ egzekucyjny", "Enforcement authority"},
		"2": {"Komornik sądowy", "Court bailiff"},
		"3": {"Przedstawiciel podatkowy", "Tax representative"},
	}
	correctionTypes = map[string]text{
		"1": {"w dacie ujęcia faktury pierwotnej", "on the date of the original invoice"},
		"2": {"w dacie wystawienia faktury korygującej", "on the issue date of the correction"},
		"3": {"w dacie innej, w tym gdy dla różnych pozycji daty te są różne", "on another date, possibly different per line"},
	}
	taxpayerStatuses = map[string]text{
		"1": {"Stan likwidacji", "In liquidation"},
		"2": {"Restrukturyzacja", "In restructuring"},
		"3": {"Upadłość", "In bankruptcy"},
		"4": {"Przedsiębiorstwo w spadku", "Enterprise in probate"},
	}
	transportKinds = map[string]text{
		"1": {"Transport morski", "Sea transport"},
		"2": {"Transport kolejowy", "Rail transport"},
		"3": {"Transport drogowy", "Road transport"},
		"4": {"Transport lotniczy", "Air transport"},
		"5": {"Przesyłka pocztowa", "Postal consignment"},
		"7": {"Stałe instalacje przesyłowe", "Fixed transport installations"},
		"8": {"Żegluga śródlądowa", "Inland waterway transport"},
	}
	cargoKinds = map[string]text{
		"1": {"Bańka", "Can"}, "2": {"Beczka", "Barrel"}, "3": {"Butla", "Cylinder"}, "4": {"Karton", "Carton"},
		"5": {"Kanister", "Jerrycan"}, "6": {"Klatka", "Cage"}, "7": {"Kontener", "Container"}, "8": {"Kosz/koszyk", "Basket"},
		"9": {"Łubianka", "Punnet"}, "10": {"Opakowanie zbiorcze", "Multipack"}, "11": {"Paczka", "Parcel"},
		"12": {"Pakiet", "Packet"}, "13": {"Paleta", "Pallet"}, "14": {"Pojemnik", "Receptacle"},
		"15": {"Pojemnik do ładunków masowych stałych", "Solid bulk container"},
		"16": {"Pojemnik do ładunków masowych w postaci płynnej", "Liquid bulk container"},
		"17": {"Pudełko", "Box"}, "18": {"Puszka", "Tin"}, "19": {"Skrzynia", "Crate"}, "20": {"Worek", "Sack"},
	}
	ownBankAccounts = map[string]text{
		"1": {"rachunek banku lub SKOK do rozliczeń z tytułu nabywanych wierzytelności", "bank's account for purchased receivables"},
		"2": {"rachunek banku lub SKOK do pobierania należności od nabywców", "bank's account for collecting receivables"},
		"3": {"rachunek banku lub SKOK prowadzony w ramach gospodarki własnej", "bank's own-operations account"},
	}
)

// code translates a code-list value, falling back to the raw value so that
// nothing the document says is dropped.
func (l Language) code(list map[string]text, v string) string {
	if t, ok := list[v]; ok {
		return l.tr(t)
	}
	return v
}
