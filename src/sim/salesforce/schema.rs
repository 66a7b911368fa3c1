//! Salesforce simulator: the field catalogue — Contact, Account and Opportunity with each
//! field's type, length and the `createable` / `updateable` / `nillable` / `externalId` flags
//! the API enforces, and the `describe` document built from it.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Id,
    String,
    TextArea,
    Email,
    Phone,
    Reference,
    DateTime,
    Date,
    Currency,
    Boolean,
    Picklist,
}

impl FieldType {
    /// The `type` of a describe result.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Reference => "reference",
            FieldType::DateTime => "datetime",
            FieldType::Date => "date",
            FieldType::Currency => "currency",
            FieldType::Boolean => "boolean",
            FieldType::Picklist => "picklist",
        }
    }

    fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::DateTime => "xsd:dateTime",
            FieldType::Date => "xsd:date",
            FieldType::Currency => "xsd:double",
            FieldType::Boolean => "xsd:boolean",
            _ => "xsd:string",
        }
    }

    /// Text-like: compared case-insensitively in SOQL, limited by `length`.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::TextArea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Picklist
        )
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub ty: FieldType,
    pub length: u32,
    pub createable: bool,
    pub updateable: bool,
    pub nillable: bool,
    pub external_id: bool,
    pub unique: bool,
    /// Set by the simulator itself (Id, IsDeleted, audit fields, formulas).
    pub system: bool,
    pub reference_to: Option<&'static str>,
    pub picklist: &'static [&'static str],
}

const fn field(name: &'static str, label: &'static str, ty: FieldType, length: u32) -> FieldDef {
    FieldDef {
        name,
        label,
        ty,
        length,
        createable: true,
        updateable: true,
        nillable: true,
        external_id: false,
        unique: false,
        system: false,
        reference_to: None,
        picklist: &[],
    }
}

impl FieldDef {
    /// Must be given on create and may not be cleared.
    const fn required(mut self) -> FieldDef {
        self.nillable = false;
        self
    }

    /// Maintained by Salesforce: neither createable nor updateable.
    const fn system(mut self, nillable: bool) -> FieldDef {
        self.createable = false;
        self.updateable = false;
        self.system = true;
        self.nillable = nillable;
        self
    }

    const fn refers(mut self, to: &'static str) -> FieldDef {
        self.reference_to = Some(to);
        self
    }

    const fn external_unique(mut self) -> FieldDef {
        self.external_id = true;
        self.unique = true;
        self
    }

    fn describe(&self) -> Value {
        let custom = self.name.ends_with("__c");
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.ty.name(),
            "soapType": self.ty.soap_type(),
            "length": self.length,
            "updateable": self.updateable,
            "createable": self.createable,
            "nillable": self.nillable,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.ty == FieldType::Id || self.external_id,
            "custom": custom,
            "calculated": self.system && !matches!(self.ty, FieldType::Id | FieldType::DateTime | FieldType::Reference) && self.name != "IsDeleted",
            "defaultedOnCreate": self.system || self.ty == FieldType::Boolean,
            "filterable": self.ty != FieldType::TextArea,
            "sortable": self.ty != FieldType::TextArea,
            "caseSensitive": false,
            "referenceTo": self.reference_to.map_or_else(Vec::new, |t| vec![t]),
            "relationshipName": self.reference_to.and_then(|_| self.name.strip_suffix("Id")),
            "picklistValues": self.picklist.iter().map(|v| json!({
                "active": true, "defaultValue": false, "label": v, "validFor": null, "value": v,
            })).collect::<Vec<_>>(),
        })
    }
}

pub struct ObjectDef {
    pub name: &'static str,
    pub label: &'static str,
    pub plural: &'static str,
    /// The 3-character key prefix of its ids.
    pub prefix: &'static str,
    pub fields: &'static [FieldDef],
}

impl ObjectDef {
    /// A field by name, case-insensitively (as the API matches field names).
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn describe(&self, version: &str) -> Value {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "name": self.name,
            "label": self.label,
            "labelPlural": self.plural,
            "keyPrefix": self.prefix,
            "custom": false,
            "createable": true,
            "updateable": true,
            "deletable": true,
            "undeletable": true,
            "queryable": true,
            "replicateable": true,
            "retrieveable": true,
            "searchable": true,
            "fields": self.fields.iter().map(FieldDef::describe).collect::<Vec<_>>(),
            "urls": {
                "sobject": base,
                "describe": format!("{base}/describe"),
                "rowTemplate": format!("{base}/{{ID}}"),
            },
        })
    }

    /// The short entry of the global describe and of `GET /sobjects/{Object}`.
    pub fn summary(&self, version: &str) -> Value {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "name": self.name, "label": self.label, "labelPlural": self.plural,
            "keyPrefix": self.prefix, "custom": false, "createable": true, "updateable": true,
            "deletable": true, "queryable": true, "replicateable": true,
            "urls": {"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")},
        })
    }
}

use FieldType as T;

const ID: FieldDef = field("Id", "Record ID", T::Id, 18).system(false);
const IS_DELETED: FieldDef = field("IsDeleted", "Deleted", T::Boolean, 0).system(false);
const EXT_ID: FieldDef = field("Ext_Id__c", "Ext Id", T::String, 255).external_unique();
const CREATED_DATE: FieldDef = field("CreatedDate", "Created Date", T::DateTime, 0).system(false);
const CREATED_BY: FieldDef = field("CreatedById", "Created By ID", T::Reference, 18)
    .refers("User")
    .system(false);
const MODIFIED_DATE: FieldDef =
    field("LastModifiedDate", "Last Modified Date", T::DateTime, 0).system(false);
const MODIFIED_BY: FieldDef = field("LastModifiedById", "Last Modified By ID", T::Reference, 18)
    .refers("User")
    .system(false);
const STAMP: FieldDef = field("SystemModstamp", "System Modstamp", T::DateTime, 0).system(false);

pub static CONTACT: ObjectDef = ObjectDef {
    name: "Contact",
    label: "Contact",
    plural: "Contacts",
    prefix: "003",
    fields: &[
        ID,
        IS_DELETED,
        field("AccountId", "Account ID", T::Reference, 18).refers("Account"),
        field("LastName", "Last Name", T::String, 80).required(),
        field("FirstName", "First Name", T::String, 40),
        field("Name", "Full Name", T::String, 121).system(false),
        field("MailingStreet", "Mailing Street", T::TextArea, 255),
        field("MailingCity", "Mailing City", T::String, 40),
        field(
            "MailingPostalCode",
            "Mailing Zip/Postal Code",
            T::String,
            20,
        ),
        field("MailingCountry", "Mailing Country", T::String, 80),
        field("Phone", "Business Phone", T::Phone, 40),
        field("Email", "Email", T::Email, 80),
        EXT_ID,
        CREATED_DATE,
        CREATED_BY,
        MODIFIED_DATE,
        MODIFIED_BY,
        STAMP,
    ],
};

pub static ACCOUNT: ObjectDef = ObjectDef {
    name: "Account",
    label: "Account",
    plural: "Accounts",
    prefix: "001",
    fields: &[
        ID,
        IS_DELETED,
        field("Name", "Account Name", T::String, 255).required(),
        field("BillingStreet", "Billing Street", T::TextArea, 255),
        field("BillingCity", "Billing City", T::String, 40),
        field(
            "BillingPostalCode",
            "Billing Zip/Postal Code",
            T::String,
            20,
        ),
        field("BillingCountry", "Billing Country", T::String, 80),
        field("Phone", "Account Phone", T::Phone, 40),
        EXT_ID,
        CREATED_DATE,
        CREATED_BY,
        MODIFIED_DATE,
        MODIFIED_BY,
        STAMP,
    ],
};

/// Opportunity stages; "Closed Won" makes `IsWon`, both closed ones `IsClosed`.
pub const STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];

pub static OPPORTUNITY: ObjectDef = ObjectDef {
    name: "Opportunity",
    label: "Opportunity",
    plural: "Opportunities",
    prefix: "006",
    fields: &[
        ID,
        IS_DELETED,
        field("AccountId", "Account ID", T::Reference, 18).refers("Account"),
        field("Name", "Name", T::String, 120).required(),
        field("StageName", "Stage", T::Picklist, 255)
            .required()
            .picklist(STAGES),
        field("Amount", "Amount", T::Currency, 0),
        field("CloseDate", "Close Date", T::Date, 0).required(),
        field("IsClosed", "Closed", T::Boolean, 0).system(false),
        field("IsWon", "Won", T::Boolean, 0).system(false),
        EXT_ID,
        CREATED_DATE,
        CREATED_BY,
        MODIFIED_DATE,
        MODIFIED_BY,
        STAMP,
    ],
};

impl FieldDef {
    const fn picklist(mut self, values: &'static [&'static str]) -> FieldDef {
        self.picklist = values;
        self
    }
}

pub static OBJECTS: [&ObjectDef; 3] = [&ACCOUNT, &CONTACT, &OPPORTUNITY];

/// An object by API name (case-insensitive, as Salesforce resolves them).
pub fn object(name: &str) -> Option<&'static ObjectDef> {
    OBJECTS
        .iter()
        .copied()
        .find(|o| o.name.eq_ignore_ascii_case(name))
}

/// The object whose ids start with `id`'s key prefix.
pub fn object_of_id(id: &str) -> Option<&'static ObjectDef> {
    OBJECTS.iter().copied().find(|o| id.starts_with(o.prefix))
}
