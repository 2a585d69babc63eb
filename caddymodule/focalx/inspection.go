package focalx

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// inspection is an emulated Focalx inspection.
type inspection struct {
	ID, ProcessID, UserHash, Registration, Name, Email, Phone, Mileage, Meta string
	Created                                                                  time.Time
	Finished                                                                 bool
}

type inspections struct {
	mu sync.Mutex
	m  map[string]*inspection
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// createInspection is CreateInspection (create_inspection.rst): a token as
// Bearer, the form fields documented (multipart/form-data as documented;
// urlencoded and JSON objects of strings are accepted too), body_type the
// only mandatory one. It answers {inspection, car, car_master}.
func (e *Emulator) createInspection(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	claims, cred := e.token(r)
	if e.bearerFailed(w, r, cred) {
		return
	}
	hash := claims["user_hash"].(string)
	form := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&form); err != nil {
			apiErr(w, r, http.StatusBadRequest, "malformed JSON body")
			return
		}
	} else {
		if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			apiErr(w, r, http.StatusBadRequest, "malformed form body")
			return
		}
		for k, v := range r.Form {
			if len(v) > 0 {
				form[k] = v[0]
			}
		}
	}
	switch strings.ToLower(form["body_type"]) {
	case "suv", "sedan", "hatchback", "station", "lcv":
	case "":
		apiErr(w, r, http.StatusBadRequest, "body_type is required")
		return
	default:
		apiErr(w, r, http.StatusBadRequest, "body_type must be one of suv, sedan, hatchback, station, lcv")
		return
	}
	reg := form["registration_number"]
	if reg == "" {
		reg = form["registration number"]
	}
	in := &inspection{ID: newUUID(), ProcessID: form["process_id"], UserHash: hash, Registration: reg, Name: form["name"],
		Email: form["email"], Phone: form["phone"], Mileage: form["mileage"], Meta: form["meta_data"], Created: time.Now().UTC()}
	if in.ProcessID == "" {
		in.ProcessID = strings.ToUpper(sandbox.RandomHex(6))
	}
	e.st.mu.Lock()
	e.st.m[in.ID] = in
	e.st.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{
		"inspection": map[string]any{"id": in.ID, "process_id": in.ProcessID, "mileage": in.Mileage, "name": in.Name, "email": in.Email,
			"phone_number": in.Phone, "meta_data": in.Meta, "is_report_submitted": false, "is_active": true,
			"created_on": in.Created.Format(time.RFC3339Nano)},
		"car":        map[string]any{"id": newUUID(), "vin": form["vin"], "registration_number": reg, "color": form["color"]},
		"car_master": map[string]any{"id": newUUID(), "make": form["make"], "model": form["model"], "year": form["year"]},
	})
}

// Report builds the DamageReport of an inspection, in the shape of the
// example in submit_damage_report.rst, with damages damages on one view.
func (in *inspection) report(damages int) map[string]any {
	list := make([]map[string]any, 0, damages)
	for i := 0; i < damages; i++ {
		list = append(list, map[string]any{"DamageNumber": newUUID(), "MarkerPoint": "[472.3, 476.0, 488.5, 494.9]", "ZoneId": "BB21",
			"PartId": "bumper", "PartName": "bumper", "DamageCategoryID": "1", "DamageCategoryName": "K4", "DamageTypeCode": "6",
			"DamageTypeName": "scratch", "OtherDamageImages": "[]", "RepairMethodCode": "4",
			"CloseUpImageFilename": newUUID() + ".jpg", "CloseUpImageFileURL": "image_url"})
	}
	now := time.Now().UTC()
	return map[string]any{
		"InspectionId": in.ID, "ProcessId": in.ProcessID, "Provider": "", "FrameNumber": "", "UserID": "",
		"StartTime": in.Created.Format("2006-01-02 15:04:05.000000-07:00"), "EndTime": now.Format("2006-01-02 15:04:05.000000-07:00"),
		"RegistrationNumber": in.Registration, "Name": in.Name, "Email": in.Email, "Phone": in.Phone,
		"Mileage": in.Mileage, "MileageImageFilename": newUUID(), "metaData": in.Meta,
		"OrientationResults": []map[string]any{{"Orientation": "1", "Manual": "False", "ImagePositionMasterName": "front",
			"OrientationName": "front", "ImageFileName": newUUID(), "ImageFileURL": "image_url", "ImageFileDrawURL": "image_url",
			"Luminous": "clear-image", "ImageCharacteristic": []string{"car"}, "ImageView": []string{"complete-image"},
			"ColorType": "Grey", "Damages": list}},
		"vehicleData": map[string]any{"RegisterNumber": in.Registration},
	}
}

// finish completes an inspection, as the user does in Focalx's plugin, and
// pushes its DamageReport to report_url. Query: inspectionId, and damages
// (how many to report, default 1). It answers 202 with the report sent.
func (e *Emulator) finish(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	q := r.URL.Query()
	damages := 1
	if v := q.Get("damages"); v != "" {
		if _, err := fmt.Sscan(v, &damages); err != nil || damages < 0 || damages > 100 {
			apiErr(w, r, http.StatusBadRequest, "damages must be 0..100")
			return
		}
	}
	e.st.mu.Lock()
	in := e.st.m[q.Get("inspectionId")]
	var rep map[string]any
	if in != nil {
		in.Finished = true
		rep = in.report(damages)
	}
	e.st.mu.Unlock()
	if in == nil {
		apiErr(w, r, http.StatusNotFound, "unknown inspectionId")
		return
	}
	e.host.Calls.Record("focalx", "DamageReport push", "report_key")
	e.reports.Send(e.host.Logger, rep, nil)
	sandbox.WriteJSON(w, http.StatusAccepted, rep)
}
