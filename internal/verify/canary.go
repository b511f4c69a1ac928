package verify

// publicCanaryAccounts are AWS accounts that issue honeytoken keys: a key of
// one of them is bait, and using it (even to verify it) raises the alarm its
// planter set. They are the accounts publicly known to serve canarytokens.org
// and services modelled on it, as scanners in this field list them. A key of
// these accounts is reported as "canary" and never called or revoked. Users
// add their own honeytoken accounts in the configuration.
var publicCanaryAccounts = []string{
	// canarytokens.org (Thinkst)
	"052310077262", "171436882533", "534261010715", "595918472158", "717712589309",
	"819147034852", "992382622183", "730335385048", "266735846894", "893192397702",
	// services modelled on it
	"044858866125", "251535659677", "344043088457", "351906852752", "390477818340",
	"426127672474", "427150556519", "439872796651", "445142720921", "465867158099",
	"637958123769", "693412236332", "732624840810", "735421457923", "959235150393",
	"982842642351",
}
