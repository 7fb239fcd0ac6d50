/*
  Assent: the "Your data" part of the preferences dialog (access, portability
  and erasure from the banner itself). assent.js loads it when the dialog
  opens for a visitor who has a consent id, so the first load stays small.
  Served at /s/{site}/assent.js?rights=LANG with the token below
  replaced by {api, site, texts} for that language. Same source rules as
  assent.js (build.rs minifies both line by line).
*/
(function(W,D,R){
var api=W.assent,state=api&&api.consent(),box=D.querySelector('#assent .assent-dlg'),X=R.texts,id,row,ask,msg;
if(!state||!state.id||!box||box.querySelector('.assent-data'))return;
id=state.id;
function h(t,a,c){
var e=D.createElement(t),k;
for(k in a)e.setAttribute(k,a[k]);
if(c)e.append.apply(e,c);
return e;
}
function btn(t,f){var b=h('button',{type:'button',class:'assent-btn'},[t]);b.onclick=f;return b;}
function say(t){msg.textContent=t;}
function url(){return R.api+'/api/visitor/'+encodeURIComponent(id);}
// "Download my data": the JSON of GET /api/visitor/{id}, saved as a file
function download(){
say('');
fetch(url()).then(r=>r.ok?r.blob():Promise.reject(r)).then(b=>{
var u=URL.createObjectURL(b),a=h('a',{href:u,download:'my-data-'+R.site+'.json',hidden:''});
D.body.append(a);
a.click();
a.remove();
setTimeout(()=>URL.revokeObjectURL(u),6e4);
},()=>say(X.failed));
}
// "Delete my data": a confirmation first, in place of the two buttons
function confirm(){
var yes=btn(X.confirm_yes,erase),no=btn(X.cancel,back);
yes.setAttribute('aria-describedby','assent-dq');
ask=h('div',{role:'group','aria-labelledby':'assent-dq'},[h('p',{id:'assent-dq'},[X.confirm]),h('div',{class:'assent-row'},[yes,no])]);
say('');
row.replaceWith(ask);
yes.focus();
}
function back(){ask.replaceWith(row);row.lastChild.focus();}
// erased (or already gone): the page forgets the choice and asks again
function erase(){
fetch(url(),{method:'DELETE'}).then(r=>{
if(r.status!=204&&r.status!=404)throw r;
D.cookie='assent_consent=;Max-Age=0;Path=/';
var shown=api._forget();
D.dispatchEvent(new CustomEvent('assent:consent',{detail:null}));
return shown;
}).then(()=>{
var b=D.querySelector('#assent .assent-ban'),p=h('p',{role:'status',tabindex:'-1',class:'assent-done'},[X.deleted]);
if(b){b.prepend(p);p.focus();}
},()=>say(X.failed));
}
msg=h('p',{role:'status'});
row=h('div',{class:'assent-row'},[btn(X.download,download),btn(X.delete,confirm)]);
box.lastChild.before(h('section',{class:'assent-cat assent-data','aria-labelledby':'assent-dt'},[
h('h3',{id:'assent-dt'},[X.your_data]),
h('p',{},[X.description]),
h('p',{},[X.consent_id+': ',h('code',{},[id])]),
row,
msg]));
})(window,document,__ASSENT_RIGHTS__);
