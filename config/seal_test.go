package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvePIN(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	files := func(name string) ([]byte, error) {
		switch name {
		case "/run/pin":
			return []byte("file-pin\n"), nil
		case "/run/pin-crlf":
			return []byte("file-pin\r\n"), nil
		case "/run/pin-two-newlines":
			return []byte("file-pin\n\n"), nil
		case "/run/pin-bare":
			return []byte("file-pin"), nil
		case "/run/pin-empty":
			return []byte("\n"), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	both := map[string]string{"KEYRAFT_HSM_PIN": "keyraft-env-pin", "VAULT_HSM_PIN": "vault-env-pin"}
	tests := []struct {
		name    string
		seal    PKCS11Seal
		env     map[string]string
		want    string
		wantErr string
		kind    error
	}{
		{"pin beats everything", PKCS11Seal{PIN: "file-pin-inline"}, both, "file-pin-inline", "", nil},
		{"pin_file beats the environment", PKCS11Seal{PINFile: "/run/pin"}, both, "file-pin", "", nil},
		{"pin_file CRLF", PKCS11Seal{PINFile: "/run/pin-crlf"}, nil, "file-pin", "", nil},
		{"pin_file one newline only", PKCS11Seal{PINFile: "/run/pin-two-newlines"}, nil, "file-pin\n", "", nil},
		{"pin_file without newline", PKCS11Seal{PINFile: "/run/pin-bare"}, nil, "file-pin", "", nil},
		{"KEYRAFT_HSM_PIN beats VAULT_HSM_PIN", PKCS11Seal{}, both, "keyraft-env-pin", "", nil},
		{"VAULT_HSM_PIN", PKCS11Seal{}, map[string]string{"VAULT_HSM_PIN": "vault-env-pin"}, "vault-env-pin", "", nil},
		{"empty KEYRAFT_HSM_PIN is unset", PKCS11Seal{}, map[string]string{"KEYRAFT_HSM_PIN": "", "VAULT_HSM_PIN": "vault-env-pin"}, "vault-env-pin", "", nil},
		{"none", PKCS11Seal{}, nil, "",
			`seal "pkcs11": no PIN; set pin or pin_file in the seal block, or KEYRAFT_HSM_PIN or VAULT_HSM_PIN in the environment`, ErrInvalid},
		{"empty pin_file", PKCS11Seal{PINFile: "/run/pin-empty"}, both, "",
			`seal "pkcs11": pin_file /run/pin-empty is empty`, ErrInvalid},
		{"missing pin_file", PKCS11Seal{PINFile: "/run/missing"}, both, "",
			`seal "pkcs11": reading pin_file: open /run/missing: file does not exist`, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.seal.ResolvePIN(env(tt.env), files)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || got != "" {
				t.Fatalf("got %q, %v; want error %s", got, err, tt.wantErr)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error does not wrap %v", tt.kind)
			}
			for _, pin := range []string{"file-pin", "env-pin"} {
				if strings.Contains(err.Error(), pin) {
					t.Errorf("error shows a PIN: %v", err)
				}
			}
		})
	}

	// nil functions are os.Getenv and os.ReadFile.
	t.Setenv("KEYRAFT_HSM_PIN", "")
	t.Setenv("VAULT_HSM_PIN", "from-os-env")
	if got, err := new(PKCS11Seal).ResolvePIN(nil, nil); err != nil || got != "from-os-env" {
		t.Errorf("os.Getenv: %q, %v", got, err)
	}
	got, err := (&PKCS11Seal{PINFile: filepath.Join("testdata", "good", "minimal.hcl")}).ResolvePIN(nil, nil)
	if err != nil || !strings.HasPrefix(got, `storage "raft"`) {
		t.Errorf("os.ReadFile: %q, %v", got, err)
	}
}

// TestPINRedacted checks that printing or encoding a parsed configuration
// never shows the PIN.
func TestPINRedacted(t *testing.T) {
	for _, file := range []string{"pkcs11-slot.hcl", "migrate-pkcs11-to-pkcs11.hcl"} {
		cfg, err := parseFile(t, filepath.Join("testdata", "good", file))
		if err != nil {
			t.Fatal(err)
		}
		k := cfg.Seal.PKCS11
		if cfg.OldSeal != nil {
			k = cfg.OldSeal.PKCS11
		}
		pin := string(k.PIN)
		if pin != "1234-secret" && pin != "old-pin" {
			t.Fatalf("%s: PIN %q", file, pin)
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		shown := []string{
			fmt.Sprintf("%+v", cfg), fmt.Sprintf("%+v", *cfg), fmt.Sprintf("%v", cfg), fmt.Sprintf("%#v", cfg),
			fmt.Sprintf("%+v", cfg.Seal), fmt.Sprintf("%#v", cfg.OldSeal),
			fmt.Sprintf("%+v", *k), fmt.Sprintf("%#v", *k), fmt.Sprintf("%s", k.PIN), fmt.Sprintf("%q", k.PIN),
			fmt.Sprintf("%x", k.PIN), fmt.Sprint(k.PIN), k.PIN.String(), k.PIN.GoString(),
			string(js),
		}
		for _, s := range shown {
			if strings.Contains(s, pin) || strings.Contains(s, fmt.Sprintf("%x", pin)) {
				t.Errorf("%s: printed config shows the PIN: %s", file, s)
			}
		}
		if s := fmt.Sprintf("%+v", *k); !strings.Contains(s, "PIN:(redacted)") {
			t.Errorf("%s: %s does not say the PIN is redacted", file, s)
		}
	}
	if s := fmt.Sprintf("%+v", PKCS11Seal{}); !strings.Contains(s, "PIN: ") {
		t.Errorf("empty PIN: %s", s)
	}
}

func TestMechanismName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CKM_AES_GCM", "CKM_AES_GCM"},
		{"ckm_rsa_pkcs_oaep", "CKM_RSA_PKCS_OAEP"},
		{"0x1087", "CKM_AES_GCM"},
		{"0X1087", "CKM_AES_GCM"},
		{"4231", "CKM_AES_GCM"},
		{"0x0009", "CKM_RSA_PKCS_OAEP"},
		{"0x9", "CKM_RSA_PKCS_OAEP"},
		{"9", "CKM_RSA_PKCS_OAEP"},
		{"0009", "CKM_RSA_PKCS_OAEP"},
		{"", ""},
		{"0x", ""},
		{"0x1085", ""},
		{"-9", ""},
		{"+9", ""},
		{"CKM_AES_GCM ", ""},
		{"CKM_AES_CBC", ""},
		{"0x10870000000000000000", ""},
	}
	for _, tt := range tests {
		got, ok := mechanismName(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("mechanismName(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}
