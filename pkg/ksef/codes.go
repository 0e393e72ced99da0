package ksef

import "strconv"

// Code is an error code of the KSeF REST API 2.0 (the seed's "Komunikaty błędów", 1001-1304).
type Code int

// Authorization and encryption errors.
const (
	CodeAuthChallenge Code = 1001 // AUTH_CHALLENGE
	CodeAESIVLength   Code = 1002 // AES_IV_LENGTH
	CodeAESKeyLength  Code = 1003 // AES_KEY_LENGTH
	CodeKsefPublicKey Code = 1004 // KSEF_PUBLIC_KEY
	CodeB64Decode     Code = 1005 // B64_DECODE
)

// Session errors.
const (
	CodeSessionToken   Code = 1101 // SESSION_TOKEN
	CodeSessionInit    Code = 1102 // SESSION_INIT
	CodeSessionOpen    Code = 1103 // SESSION_OPEN
	CodeSessionRefNum  Code = 1104 // SESSION_REF_NUM
	CodeSessionStatus  Code = 1105 // SESSION_STATUS
	CodeSessionClose   Code = 1106 // SESSION_CLOSE
	CodeSessionUPO     Code = 1107 // SESSION_UPO
	CodeSessionSave    Code = 1108 // SESSION_SAVE
	CodeSessionUnknown Code = 1109 // SESSION_UNKNOWN
	CodeSessionAccess  Code = 1110 // SESSION_ACCESS
	CodeSessionNoUPO   Code = 1111 // SESSION_NO_UPO
)

// Invoice errors.
const (
	CodeInvoiceVersion   Code = 1201 // INVOICE_VERSION
	CodeInvoiceSize      Code = 1202 // INVOICE_SIZE
	CodeInvoiceFormat    Code = 1203 // INVOICE_FORMAT
	CodeInvoiceSend      Code = 1204 // INVOICE_SEND
	CodeInvoiceStatus    Code = 1205 // INVOICE_STATUS
	CodeInvoiceSave      Code = 1206 // INVOICE_SAVE
	CodeInvoiceUnknown   Code = 1207 // INVOICE_UNKNOWN
	CodeInvoiceInput     Code = 1208 // INVOICE_INPUT
	CodeInvoiceVisualize Code = 1209 // INVOICE_VISUALIZE
)

// Query errors.
const (
	CodeQueryParams Code = 1301 // QUERY_INVOICE_PARAMS
	CodeQueryInit   Code = 1302 // QUERY_INVOICE_INIT
	CodeQueryStatus Code = 1303 // QUERY_INVOICE_STATUS
	CodeQueryResult Code = 1304 // QUERY_INVOICE_RESULT
)

// CodeTooManyRequests is the code of the Error sent with HTTP 429; the seed defines none, so the
// API answers as the Ministry's does, with the HTTP status as the code.
const CodeTooManyRequests Code = 429

type codeInfo struct{ name, description string }

var codeTable = map[Code]codeInfo{
	CodeAuthChallenge:    {"AUTH_CHALLENGE", "Nie udało się pobrać wyzwania autoryzacyjnego z systemu KSeF"},
	CodeAESIVLength:      {"AES_IV_LENGTH", "Wektor inicjujący ma nieprawidłową długość"},
	CodeAESKeyLength:     {"AES_KEY_LENGTH", "Klucz symetryczny ma nieprawidłową długość"},
	CodeKsefPublicKey:    {"KSEF_PUBLIC_KEY", "Nie udało się pobrać klucza publicznego systemu KSeF"},
	CodeB64Decode:        {"B64_DECODE", "Nieprawidłowe kodowanie base64 wartości"},
	CodeSessionToken:     {"SESSION_TOKEN", "Nie udało się przygotować odpowiedzi na wyzwanie autoryzacyjne dla systemu KSeF"},
	CodeSessionInit:      {"SESSION_INIT", "Nie udało się zainicjować nowej sesji w systemie KSeF"},
	CodeSessionOpen:      {"SESSION_OPEN", "Nie udało się utworzyć nowej sesji w systemie KSeF"},
	CodeSessionRefNum:    {"SESSION_REF_NUM", "Brak identyfikatora nowej sesji KSeF"},
	CodeSessionStatus:    {"SESSION_STATUS", "Nie udało się pobrać bieżącego statusu sesji z systemu KSeF"},
	CodeSessionClose:     {"SESSION_CLOSE", "Nie udało się zamknąć sesji w systemie KSeF"},
	CodeSessionUPO:       {"SESSION_UPO", "Nie udało się pobrać UPO z systemu KSeF"},
	CodeSessionSave:      {"SESSION_SAVE", "Nie udało się zaktualizować danych sesji KSeF"},
	CodeSessionUnknown:   {"SESSION_UNKNOWN", "Nieznany identyfikator sesji KSeF"},
	CodeSessionAccess:    {"SESSION_ACCESS", "Użytkownik nie ma dostępu do podanej sesji"},
	CodeSessionNoUPO:     {"SESSION_NO_UPO", "Brak UPO"},
	CodeInvoiceVersion:   {"INVOICE_VERSION", "Nieprawidłowa wersja formatu faktury"},
	CodeInvoiceSize:      {"INVOICE_SIZE", "Faktura ma niedopuszczalny rozmiar"},
	CodeInvoiceFormat:    {"INVOICE_FORMAT", "Faktura ma nieprawidłowy format"},
	CodeInvoiceSend:      {"INVOICE_SEND", "Nie udało się wysłać faktury do systemu KSeF"},
	CodeInvoiceStatus:    {"INVOICE_STATUS", "Nie udało się pobrać bieżącego statusu faktury z systemu KSeF"},
	CodeInvoiceSave:      {"INVOICE_SAVE", "Nie udało się zaktualizować danych faktury"},
	CodeInvoiceUnknown:   {"INVOICE_UNKNOWN", "Nieznany identyfikator faktury"},
	CodeInvoiceInput:     {"INVOICE_INPUT", "Brak wymaganych metadanych faktury"},
	CodeInvoiceVisualize: {"INVOICE_VISUALIZE", "Nie udało się wygenerować wizualizacji faktury"},
	CodeQueryParams:      {"QUERY_INVOICE_PARAMS", "Nieprawidłowe lub niekompletne kryteria wyszukiwania faktur"},
	CodeQueryInit:        {"QUERY_INVOICE_INIT", "Nie udało się rozpocząć procesu wyszukiwania faktur"},
	CodeQueryStatus:      {"QUERY_INVOICE_STATUS", "Nie udało się pobrać statusu procesu wyszukiwania faktur"},
	CodeQueryResult:      {"QUERY_INVOICE_RESULT", "Nie udało się pobrać wyniku wyszukiwania faktur"},
	CodeTooManyRequests:  {"TOO_MANY_REQUESTS", "Too Many Requests"},
}

// Name is the seed's symbolic name of the code, e.g. "SESSION_UNKNOWN"; "" for unknown codes.
func (c Code) Name() string { return codeTable[c].name }

// Description is the seed's (Polish) description of the code.
func (c Code) Description() string { return codeTable[c].description }

// Known reports whether the code is one the seed defines.
func (c Code) Known() bool { _, ok := codeTable[c]; return ok }

// String is the code as it travels in Error.code.
func (c Code) String() string { return strconv.Itoa(int(c)) }
