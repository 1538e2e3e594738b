package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Artifact extensions by language, as DRUM detects them (spec §8.6).
var (
	pythonArtifacts = []string{".pkl", ".pth", ".h5", ".joblib", ".onnx"}
	rArtifacts      = []string{".rds"}
	javaArtifacts   = []string{".jar", ".zip", ".java", ".mojo"}
	// dropInArtifacts are the files DRUM's built-in Python predictors load (spec §8.5).
	dropInArtifacts = []string{".h5", ".onnx", ".pkl", ".pth"}
)

// checkCodeDir detects the model's language the way DRUM does and refuses what drum
// cannot serve yet. For an artifact-only folder (no custom.py) it also checks the
// artifact count now, so the mistake is reported at once instead of after a worker
// fails to boot.
func checkCodeDir(dir string) error {
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	langs := map[string]bool{}
	for _, f := range files {
		switch ext := strings.ToLower(filepath.Ext(f)); {
		case has(pythonArtifacts, ext):
			langs["python"] = true
		case has(rArtifacts, ext):
			langs["r"] = true
		case has(javaArtifacts, ext):
			langs["java"] = true
		}
	}
	custom := ""
	pyHook := exists(filepath.Join(dir, "custom.py"))
	rHook := exists(filepath.Join(dir, "custom.R")) || exists(filepath.Join(dir, "custom.r"))
	switch {
	case pyHook && !rHook:
		custom = "python"
	case rHook && !pyHook:
		custom = "r"
	}
	artifactLang := ""
	if len(langs) == 1 {
		for l := range langs {
			artifactLang = l
		}
	}
	lang := custom
	if lang == "" {
		lang = artifactLang
	}
	if lang == "" || (custom != "" && artifactLang != "" && custom != artifactLang) {
		sort.Strings(files)
		if len(files) > 100 {
			files = files[:100]
		}
		return fmt.Errorf("--code-dir %s: Can not detect language by artifacts and/or custom.py/R files. Put a custom.py or one model artifact (.pkl, .pth, .h5, .onnx) in the folder. Files found: %v", dir, files)
	}
	if lang != "python" {
		return fmt.Errorf("--code-dir %s: the model is a %s model; drum serves Python models only (R and Java are not supported yet)", dir, map[string]string{"r": "R", "java": "Java"}[lang])
	}
	if custom == "" {
		return checkDropIn(dir)
	}
	return nil
}

func checkDropIn(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read --code-dir %s: %w", dir, err)
	}
	var found []string
	for _, e := range entries {
		if !e.IsDir() && has(dropInArtifacts, strings.ToLower(filepath.Ext(e.Name()))) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("An error occurred when loading your artifact: Could not find model artifact file in: %s supported by default predictors. They support filenames with the following extensions ['.h5', '.onnx', '.pkl', '.pth']. Add the artifact, or a custom.py with a load_model hook", dir)
	case 1:
		return nil
	}
	return fmt.Errorf("Multiple serialized model files found. Remove extra artifacts or overwrite custom.load_model(): %s holds %s", dir, strings.Join(found, ", "))
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
