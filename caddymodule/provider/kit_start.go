package provider

// StartChecker is implemented by Starter providers that read fields of
// their own (StartInput.Params): the core calls CheckStart before a new
// session is paid for, ahead of the client's quota and of Start, so a
// malformed request costs neither. A *Error is answered as is.
type StartChecker interface {
	CheckStart(in StartInput) error
}
