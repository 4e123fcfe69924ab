package builder

// allVerbs is every verb, as the core kinds are served.
var allVerbs = []string{VerbCreate, VerbDelete, VerbDeleteCollection, VerbGet, VerbList, VerbPatch, VerbUpdate, VerbWatch}

// testResources are the core/v1 kinds kedge serves today.
func testResources() []Resource {
	return []Resource{
		{Version: "v1", Kind: "Namespace", Plural: "namespaces", Verbs: allVerbs, Subresources: []string{"status", "finalize"}},
		{Version: "v1", Kind: "Node", Plural: "nodes", Verbs: allVerbs, Subresources: []string{"status"}},
		{Version: "v1", Kind: "Pod", Plural: "pods", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status", "log", "binding"}, DeleteReturnsObject: true},
		{Version: "v1", Kind: "Event", Plural: "events", Namespaced: true, Verbs: allVerbs},
	}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Version = "v1.34.2"
	cfg.Resources = testResources()
	return cfg
}
