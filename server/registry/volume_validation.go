package registry

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// fileModeErrorMsg is Kubernetes' message for a bad defaultMode or mode.
const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolumes checks the pod's volumes (names DNS-1123 labels and
// unique, exactly one source each, the sources kedge mounts well formed)
// and returns the set of declared names for the mounts to refer to.
func validateVolumes(volumes []corev1.Volume, fldPath *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range volumes {
		v := &volumes[i]
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		errs = append(errs, validateVolumeSource(&v.VolumeSource, idxPath)...)
		if v.Name == "" {
			errs = append(errs, field.Required(namePath, ""))
		} else {
			errs = append(errs, validateDNS1123Label(v.Name, namePath)...)
		}
		if names[v.Name] {
			errs = append(errs, field.Duplicate(namePath, v.Name))
		}
		names[v.Name] = true
	}
	return names, errs
}

// validateVolumeSource requires exactly one source and checks the ones
// kedge can mount.
func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	// Every VolumeSource field is a pointer to one kind of source; counting
	// the non-nil ones keeps this right as k8s.io/api adds sources.
	v := reflect.ValueOf(src).Elem()
	n := 0
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsNil() {
			continue
		}
		n++
		if n > 1 {
			errs = append(errs, field.Forbidden(fldPath.Child(jsonName(v.Type().Field(i))), "may not specify more than 1 volume type"))
		}
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a volume type"))
	}
	if hp := src.HostPath; hp != nil {
		p := fldPath.Child("hostPath")
		if hp.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validateHostPathType(hp.Type, p.Child("type"))...)
	}
	if s := src.Secret; s != nil {
		p := fldPath.Child("secret")
		if s.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secretName"), ""))
		}
		errs = append(errs, validateFileMode(s.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(s.Items, p.Child("items"))...)
	}
	if c := src.ConfigMap; c != nil {
		p := fldPath.Child("configMap")
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		errs = append(errs, validateFileMode(c.DefaultMode, p.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(c.Items, p.Child("items"))...)
	}
	if c := src.PersistentVolumeClaim; c != nil && c.ClaimName == "" {
		errs = append(errs, field.Required(fldPath.Child("persistentVolumeClaim", "claimName"), ""))
	}
	if ed := src.EmptyDir; ed != nil && ed.SizeLimit != nil && ed.SizeLimit.Sign() < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("emptyDir", "sizeLimit"), ed.SizeLimit.String(), "must be greater than or equal to 0"))
	}
	return errs
}

// validateHostPathType checks the hostPath type enum.
func validateHostPathType(t *corev1.HostPathType, fldPath *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	valid := []corev1.HostPathType{
		corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
		corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev,
	}
	for _, v := range valid {
		if *t == v {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fldPath, *t, valid)}
}

// validateFileMode checks a defaultMode or mode: 0 to 0777.
func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

// validateKeyToPaths checks projected items: key and path required, the
// path relative and not climbing out, modes in range.
func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		idxPath := fldPath.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(idxPath.Child("key"), ""))
		}
		if it.Path == "" {
			errs = append(errs, field.Required(idxPath.Child("path"), ""))
		} else {
			errs = append(errs, validateLocalDescendingPath(it.Path, idxPath.Child("path"))...)
		}
		errs = append(errs, validateFileMode(it.Mode, idxPath.Child("mode"))...)
	}
	return errs
}
