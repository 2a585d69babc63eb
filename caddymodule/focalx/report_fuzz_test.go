package focalx

import (
	"testing"
)

// FuzzParseDamageReport: any body is read without a panic, and an accepted
// report has a well-formed InspectionId.
func FuzzParseDamageReport(f *testing.F) {
	f.Add([]byte(`{"InspectionId":"72e18833-bbc7-48a4-af5a-f25402e7de12","RegistrationNumber":"CTFG18","OrientationResults":[{"Damages":[{}]}]}`))
	f.Add([]byte(`{"InspectionId":7}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"InspectionId":"../../etc"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := ParseDamageReport(raw)
		if err == nil && !inspectionIDRe.MatchString(rep.InspectionID) {
			t.Fatalf("accepted InspectionId %q", rep.InspectionID)
		}
		_ = countDamages(rep)
	})
}
