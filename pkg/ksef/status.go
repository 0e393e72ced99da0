package ksef

import "strconv"

// StatusCode is the processing status of an invoice (StatusInfo.code), from the seed's status table.
type StatusCode int

const (
	StatusReceived     StatusCode = 100 // Faktura przyjęta do dalszego przetwarzania
	StatusProcessing   StatusCode = 150 // Trwa przetwarzanie
	StatusAccepted     StatusCode = 200 // Sukces
	StatusSessionError StatusCode = 405 // Przetwarzanie anulowane z powodu błędu sesji
	StatusPermission   StatusCode = 410 // Nieprawidłowy zakres uprawnień
	StatusAttachment   StatusCode = 415 // Brak możliwości wysyłania faktury z załącznikiem
	StatusInvalid      StatusCode = 430 // Błąd weryfikacji pliku faktury
	StatusDecryption   StatusCode = 435 // Błąd odszyfrowania pliku
	StatusDuplicate    StatusCode = 440 // Duplikat faktury
	StatusSemantic     StatusCode = 450 // Błąd weryfikacji semantyki dokumentu faktury
	StatusUnknown      StatusCode = 500 // Nieznany błąd ({statusCode})
	StatusCancelled    StatusCode = 550 // Operacja została anulowana przez system
)

// Extension keys of a 440 (duplicate) status.
const (
	ExtOriginalSessionReferenceNumber = "originalSessionReferenceNumber"
	ExtOriginalKsefNumber             = "originalKsefNumber"
)

var statusDescriptions = map[StatusCode]string{
	StatusReceived:     "Faktura przyjęta do dalszego przetwarzania",
	StatusProcessing:   "Trwa przetwarzanie",
	StatusAccepted:     "Sukces",
	StatusSessionError: "Przetwarzanie anulowane z powodu błędu sesji",
	StatusPermission:   "Nieprawidłowy zakres uprawnień",
	StatusAttachment:   "Brak możliwości wysyłania faktury z załącznikiem",
	StatusInvalid:      "Błąd weryfikacji pliku faktury",
	StatusDecryption:   "Błąd odszyfrowania pliku",
	StatusDuplicate:    "Duplikat faktury",
	StatusSemantic:     "Błąd weryfikacji semantyki dokumentu faktury",
	StatusUnknown:      "Nieznany błąd",
	StatusCancelled:    "Operacja została anulowana przez system",
}

// Description is the seed's description of the status.
func (s StatusCode) Description() string { return statusDescriptions[s] }

// Known reports whether the seed defines the status.
func (s StatusCode) Known() bool { _, ok := statusDescriptions[s]; return ok }

func (s StatusCode) String() string { return strconv.Itoa(int(s)) }

// Final reports whether the status will not change any more: 100 and 150 are in progress, every
// other defined status is an outcome. Unknown codes are treated as not final so that a caller
// keeps asking instead of recording an outcome it does not understand.
func (s StatusCode) Final() bool {
	switch s {
	case StatusReceived, StatusProcessing:
		return false
	}
	return s.Known()
}

// Accepted reports whether the invoice got its KSeF number.
func (s StatusCode) Accepted() bool { return s == StatusAccepted }

// Retryable reports whether a rejected invoice may succeed when sent again unchanged: 405 (the
// session failed), 500 (unknown error) and 550 (cancelled by the system, "try again") are on the
// service's side; every other rejection is about the invoice itself and will repeat.
func (s StatusCode) Retryable() bool {
	switch s {
	case StatusSessionError, StatusUnknown, StatusCancelled:
		return true
	}
	return false
}
